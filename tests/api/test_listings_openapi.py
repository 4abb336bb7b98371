"""The catalog and exhibition endpoints are in the OpenAPI document with their problem responses."""

from __future__ import annotations


def test_listings_paths_are_documented(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.get_json()
    paths = spec["paths"]
    for path, methods in {
        "/api/v1/products": {"get", "post"},
        "/api/v1/products/{product_id}": {"get", "patch", "delete"},
        "/api/v1/products/{product_id}/versions": {"get"},
        "/api/v1/products/{product_id}/history": {"get"},
        "/api/v1/fairs": {"get", "post"},
        "/api/v1/fairs/{fair_id}": {"get"},
        "/api/v1/fairs/{fair_id}/stalls": {"get", "post"},
        "/api/v1/fairs/{fair_id}/stalls/{stall_id}": {"patch"},
    }.items():
        assert methods <= set(paths[path]), path
    assert "422" in paths["/api/v1/products"]["post"]["responses"]
    assert "404" in paths["/api/v1/products/{product_id}"]["get"]["responses"]
    assert "409" in paths["/api/v1/products/{product_id}"]["patch"]["responses"]
    params = {p["name"] for p in paths["/api/v1/products"]["get"]["parameters"]}
    assert {"q", "category", "origin_region", "delivery_mode", "classification", "price_model", "currency",
            "min_amount", "max_amount", "vendor_id", "fair_id", "sort", "mine", "page", "per_page"} <= params
    create = spec["components"]["schemas"]["ProductCreate"]
    assert set(create["required"]) >= {"title", "price", "scenarios", "license", "data_source"}
