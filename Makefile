# The project's checks, one target each; `make ci` runs them all, as .ci/run does.
# `make` alone (or `make help`) lists the targets from their `##` comments.
.DEFAULT_GOAL := help
UV ?= uv
RUN := $(UV) run --frozen

.PHONY: help fmt fmt-check lint typecheck render test ci

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

fmt: ## Format the code and sort imports (rewrites files)
	$(RUN) ruff format .
	$(RUN) ruff check --fix --select I .

fmt-check: ## Fail when a file is not ruff-formatted
	$(RUN) ruff format --check .

lint: ## ruff check: the rule set in pyproject.toml, every noqa proving it is needed (RUF100)
	$(RUN) ruff check .

typecheck: ## mypy with the pydantic plugin over pipelines/ and steps/ (settings in pyproject.toml)
	$(RUN) mypy

render: ## Fail when the rendered manifests under argocd/ drift from the templates
	$(RUN) kiosk render --check

test: ## The test suite (the README's test command)
	$(UV) run pytest

ci: fmt-check lint typecheck render test ## Everything CI runs, in order, stopping at the first failure
