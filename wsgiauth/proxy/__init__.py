"""Proxy providers: identity comes from the request itself (headers, or nothing for guest)."""
