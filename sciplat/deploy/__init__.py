"""Running sciplat on Kubernetes: the Helm chart's values model and schema, and the in-cluster
entry point of the hub and TAP containers (``deploy/helm/sciplat/``)."""
