from tests.conftest import client_for


def test_home_lists_only_my_teams(owner, outsider, team, other_team):
    response = client_for(owner).get("/")
    assert response.status_code == 200
    assert b"Checkout" in response.content
    assert b"Search" not in response.content


def test_every_page_sends_a_content_security_policy(owner):
    response = client_for(owner).get("/")
    assert "script-src 'self' 'nonce-" in response.headers["Content-Security-Policy"]


def test_anonymous_is_sent_to_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")
