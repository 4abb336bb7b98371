"""Per-request state never leaks between requests that share an app context."""

from exchange.db import db


def test_requests_inside_a_pushed_context_do_not_share_the_caller(app, api):
    vendor, buyer = api.vendor(), api.enterprise()
    with app.app_context():
        db.session.execute(db.text("SELECT 1"))
        assert api.get("me", vendor).get_json()["organization"]["id"] == vendor.org_id
        assert api.get("me", buyer).get_json()["organization"]["id"] == buyer.org_id
        assert api.get("me").status_code == 401
