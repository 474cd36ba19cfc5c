# Kubernetes: the pipeline on kind or minikube (k8s/README.md), and the offline checks
# of the manifests. Included by the Makefile.
K8S_OVERLAYS := kind minikube multinode
K8S_RENDERED := artifacts/k8s
# The overlays wrapped with their image tags (scripts/k8s_overlay.py; the manifests carry none).
K8S_TAGGED := .cache/k8s/kustomize
# The Kubernetes version the manifests are checked against (kubernetes-validate's
# schemas); the same minor as k8s/kind-cluster.yaml's node image.
K8S_VERSION := 1.34.0
# kubectl (its built-in kustomize) from the venv when installed there, else from PATH;
# a standalone kustomize works too: make k8s-render KUSTOMIZE="kustomize build".
KUSTOMIZE ?= $(if $(wildcard $(VENV)/bin/kubectl),$(VENV)/bin/kubectl,kubectl) kustomize

.PHONY: kind-up minikube-up k8s-run kind-down minikube-down k8s-doctor k8s-smoke k8s-render k8s-validate k8s-push

##@ Kubernetes

kind-up: ## Kubernetes on kind: cluster, images, Secrets, manifests, UI on 127.0.0.1:8080 (KIND_NODES=3: three nodes, overlay multinode; FORCE=1: replace even during a run)
	@scripts/k8s-kind-up.sh

minikube-up: ## Kubernetes on minikube: the same as kind-up
	@scripts/k8s-minikube-up.sh

k8s-run: ## Run the k8s DAG once and follow it: make k8s-run DATE=YYYY-MM-DD [END=YYYY-MM-DD]
	@test -n "$(DATE)" || { echo "usage: make k8s-run DATE=YYYY-MM-DD [END=YYYY-MM-DD]" >&2; exit 2; }
	@scripts/k8s-run.sh "$(DATE)" "$(or $(END),$(DATE))"

k8s-push: ## Build what is missing, push every image the cluster runs to APOD_IMAGE_REGISTRY
	@python3 scripts/k8s_images.py push

k8s-doctor: ## Check Docker, kind/minikube, kubectl and room for the stack (kind-up/minikube-up do first)
	@python3 scripts/k8s_doctor.py

k8s-smoke: ## On a machine with kind or minikube: own cluster, run, compare with a by-hand run: make k8s-smoke [CLUSTER=minikube] [KEEP=1]
	@python3 scripts/k8s_smoke.py $(or $(CLUSTER),kind) $(if $(KEEP),--keep)

kind-down: ## Delete the kind cluster (k8s/.secrets.env is kept)
	@scripts/k8s-kind-down.sh

minikube-down: ## Delete the minikube profile (k8s/.secrets.env is kept)
	@scripts/k8s-minikube-down.sh

k8s-render: ## Render each overlay (kind, minikube, multinode; APOD_DATA_STORAGE_CLASS for RWX), tagged from VERSION, into artifacts/k8s/<overlay>.yaml
	@mkdir -p $(K8S_RENDERED)
	@for overlay in $(K8S_OVERLAYS); do \
	  python3 scripts/k8s_overlay.py $$overlay $(K8S_TAGGED)/$$overlay || exit 1; \
	  $(KUSTOMIZE) $(K8S_TAGGED)/$$overlay >$(K8S_RENDERED)/$$overlay.yaml || exit 1; \
	  echo "k8s-render: $(K8S_RENDERED)/$$overlay.yaml"; \
	done

k8s-validate: venv k8s-render ## Validate the rendered overlays (Kubernetes 1.34 schemas, strict) and run the k8s tests
	$(VENV)/bin/kubernetes-validate --strict --quiet --kubernetes-version $(K8S_VERSION) \
	  $(addprefix $(K8S_RENDERED)/,$(addsuffix .yaml,$(K8S_OVERLAYS)))
	$(VENV)/bin/pytest -m "k8s and not docker" tests/k8s $(PYTEST_ARGS)
