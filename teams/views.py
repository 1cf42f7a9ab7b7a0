from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from teams.selectors import teams_for_user


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "teams/home.html", {"teams": teams_for_user(request.user)})
