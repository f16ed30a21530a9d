"""What the unit tests share: where the repository is, and the names scenario alpha-basic uses.

The names are those of the upstream samples that scenario alpha-basic installs in the sandbox, so
that a unit test reads like the cluster a user has.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

NAMESPACE = "default"
ALPHA = "vllm-llama3-8b-instruct-preview"  # the preview pool, also its Helm release
ALPHA_EPP = ALPHA + "-epp"
GA = "vllm-llama3-8b-instruct-ga"  # the GA pool the migration installs beside it
GA_EPP = GA + "-epp"
ROUTE = "llm-route"
GATEWAY_NAME = "inference-gateway"
MODEL_SERVER_LABELS = {"app": "vllm-llama3-8b-instruct"}
BASE_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
