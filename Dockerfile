# Production image: the ASGI web server, the Celery worker and beat all run from it.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml ./
RUN pip install --upgrade pip && pip install .
COPY . .
# collectstatic needs settings to import; these values exist only for this build step.
RUN DEBUG=0 SECRET_KEY=collectstatic-only LEAKSEAL_CREDENTIAL_KEYS=Wnn2o4d1Bq5DZp6jvJ0o3QdVb7n1nH7l1p9bS8Qe0vA= ALLOWED_HOSTS=build python manage.py collectstatic --noinput

RUN useradd --system --uid 1000 leakseal && mkdir -p /app/var && chown leakseal /app/var
USER leakseal
EXPOSE 8000
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--proxy-headers", "--forwarded-allow-ips", "*", "--timeout-graceful-shutdown", "3"]
