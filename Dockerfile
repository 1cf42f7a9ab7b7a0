# Production image: the ASGI web server, the Celery worker and beat all run from it.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy UV_NO_CACHE=1 PATH=/app/.venv/bin:$PATH
WORKDIR /app

# Exactly what uv.lock pins, without the dev group, installed by the uv version that
# pyproject.toml pins ([tool.uv] required-version); uv itself does not stay in the image.
COPY pyproject.toml uv.lock ./
RUN uv_version="$(sed -n 's/^required-version = "==\([^"]*\)"/\1/p' pyproject.toml)" \
    && test -n "$uv_version" \
    && pip install "uv==$uv_version" \
    && uv sync --locked --no-dev --python /usr/local/bin/python3 \
    && pip uninstall --yes uv
COPY . .
# collectstatic needs settings to import; these values exist only for this build step.
RUN DEBUG=0 SECRET_KEY=collectstatic-only LEAKSEAL_CREDENTIAL_KEYS=Wnn2o4d1Bq5DZp6jvJ0o3QdVb7n1nH7l1p9bS8Qe0vA= ALLOWED_HOSTS=build python manage.py collectstatic --noinput

RUN useradd --system --uid 1000 leakseal && mkdir -p /app/var && chown leakseal /app/var
USER leakseal
EXPOSE 8000
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--proxy-headers", "--forwarded-allow-ips", "*", "--timeout-graceful-shutdown", "3"]
