# The project's container registry (images/registry, CNCF Distribution from Debian) on
# 127.0.0.1: what kind-up pushes the cluster's images to, usable alone. Included by the
# Makefile. APOD_REGISTRY_NAME (apod-registry) and APOD_REGISTRY_PORT (5001) choose another.
.PHONY: registry registry-down

##@ Kubernetes

registry: ## Start the project's registry on 127.0.0.1:5001 (images/registry/README.md)
	@python3 scripts/registry.py up

registry-down: ## Remove the registry container (VOLUMES=1: and the images it holds)
	@python3 scripts/registry.py down $(if $(filter 1,$(VOLUMES)),--volumes)
