"""HTTP only: read the request, call one service, return its answer."""
