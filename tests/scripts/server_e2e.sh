#!/usr/bin/env bash
# End-to-end test of `dsv4 serve` with real clients:
#   bash server_e2e.sh <dsv4-binary> <build-dir>
# Synthesizes the default random model (full 129,280-token vocabulary) once into the build dir,
# uses DeepSeek's tokenizer (scripts/fetch_tokenizer.sh when missing), starts the server on a free
# loopback port with an API key, then checks it with curl, with the official `openai` npm SDK
# (tests/js/server_e2e.mjs) and with the web page in headless Chromium (tests/js/page_test.mjs,
# screenshot kept as <build-dir>/server_e2e/page.png). The server must stay up throughout and
# exit cleanly on SIGTERM.
set -euo pipefail
dsv4="$(realpath "$1")"
build="$(realpath "$2")"
root="$(cd "$(dirname "$0")/../.." && pwd)"
js="$root/tests/js"
tokdir="$js/tokenizer"
work="$build/server_e2e"
model="$work/model"
key="e2e-secret"
mkdir -p "$work"

fail() {
  echo "server_e2e: FAIL: $*" >&2
  [ -f "$work/serve.log" ] && { echo "--- serve.log (tail)" >&2; tail -20 "$work/serve.log" >&2; }
  exit 1
}
[ -d "$js/node_modules/openai" ] && [ -d "$js/node_modules/playwright-core" ] ||
  fail "$js/node_modules lacks openai / playwright-core (run scripts/setup.sh)"
command -v chromium >/dev/null || fail "chromium is not installed (Debian package chromium; scripts/setup.sh)"
if [ ! -f "$tokdir/tokenizer.json" ]; then
  "$root/scripts/fetch_tokenizer.sh" "$tokdir" >/dev/null || fail "cannot fetch the tokenizer (scripts/fetch_tokenizer.sh)"
fi
if [ ! -f "$model/config.json" ]; then
  "$dsv4" synth --preset default --out "$model" --quiet || fail "dsv4 synth failed"
fi

# ---- dsv4 run / dsv4 chat on the same model --------------------------------------------------
M=(--model "$model" --tokenizer "$tokdir" --ctx 512)
"$dsv4" run "${M[@]}" -p "Hello" -n 5 --temp 0 >"$work/run.out" 2>"$work/run.err" || fail "dsv4 run: $(cat "$work/run.err")"
[ -s "$work/run.out" ] || fail "dsv4 run printed nothing"
grep -q 'decode 5 tok .* tok/s | finish length' "$work/run.err" || fail "dsv4 run timing line: $(cat "$work/run.err")"
"$dsv4" run "${M[@]}" -p "Hello" -n 5 --temp 0 >"$work/run2.out" 2>/dev/null
cmp -s "$work/run.out" "$work/run2.out" || fail "dsv4 run --temp 0 is not reproducible"
"$dsv4" run "${M[@]}" -p "Hello" -n 5 --temp 0 --chunk 3 >"$work/run3.out" 2>/dev/null || fail "dsv4 run --chunk 3"
cmp -s "$work/run.out" "$work/run3.out" || fail "dsv4 run --chunk 3 (prefill in 3-row forward calls) changed the answer"
"$dsv4" run "${M[@]}" -p "x" --chunk 0 >/dev/null 2>"$work/run.err" && fail "dsv4 run accepted --chunk 0"
grep -q 'chunk' "$work/run.err" || fail "bad --chunk error does not name the flag: $(cat "$work/run.err")"
"$dsv4" run "${M[@]}" --raw -p "Once upon a time" -n 3 --temp 0 >/dev/null 2>"$work/run.err" ||
  fail "dsv4 run --raw: $(cat "$work/run.err")"
"$dsv4" run "${M[@]}" -p "x" --mem-limit 1K >/dev/null 2>"$work/run.err" && fail "dsv4 run ignored --mem-limit 1K"
grep -q 'more than the memory limit' "$work/run.err" || fail "--mem-limit error: $(cat "$work/run.err")"
"$dsv4" run "${M[@]}" -p "x" --top-p 2 >/dev/null 2>"$work/run.err" && fail "dsv4 run accepted --top-p 2"
grep -q 'top_p' "$work/run.err" || fail "bad --top-p error does not name top_p: $(cat "$work/run.err")"
printf 'Hello\n/think on\nWhy?\n/save %s\n/nonsense\n' "$work/chat1.json" |
  "$dsv4" chat "${M[@]}" -n 4 --temp 0 >"$work/chat.out" 2>"$work/chat.err" || fail "dsv4 chat: $(cat "$work/chat.err")"
grep -q 'unknown command /nonsense' "$work/chat.err" || fail "dsv4 chat: no error for an unknown command"
printf '/load %s\nAnd then?\n/save %s\n' "$work/chat1.json" "$work/chat2.json" |
  "$dsv4" chat "${M[@]}" -n 4 --temp 0 >"$work/chat.out" 2>"$work/chat.err" || fail "dsv4 chat /load: $(cat "$work/chat.err")"
node -e '
  const fs = require("fs");
  const a = JSON.parse(fs.readFileSync(process.argv[1])), b = JSON.parse(fs.readFileSync(process.argv[2]));
  const roles = (c) => c.messages.map((m) => m.role).join(",");
  if (roles(a) !== "user,assistant,user,assistant" || a.thinking !== true) throw new Error("chat1: " + JSON.stringify(a));
  if (!a.messages[3].reasoning_content) throw new Error("thinking turn saved no reasoning_content");
  if (roles(b) !== roles(a) + ",user,assistant" || b.messages[4].content !== "And then?") throw new Error("chat2: " + JSON.stringify(b));
' "$work/chat1.json" "$work/chat2.json" || fail "dsv4 chat /save and /load"

"$dsv4" serve --model "$model" --tokenizer "$tokdir" --host 127.0.0.1 --port 0 --parallel 4 --ctx 1024 --chunk 64 \
  --api-key "$key" --alias dsv4-e2e >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 600); do
  port="$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/serve.log")"
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "the server exited during start-up"
  sleep 0.1
done
[ -n "$port" ] || fail "the server did not start listening within 60 s"
url="http://127.0.0.1:$port"
echo "server_e2e: server at $url (pid $pid)"

# ---- curl: routes, auth, SSE framing ---------------------------------------------------------
code() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }
[ "$(code "$url/health")" = 200 ] || fail "GET /health"
grep -q '"status":"ok"' "$work/body" || fail "/health body: $(cat "$work/body")"
[ "$(code "$url/")" = 200 ] && grep -q '<title>dsv4 chat</title>' "$work/body" || fail "GET / does not serve the page"
[ "$(code "$url/v1/models")" = 401 ] || fail "/v1/models without a key should be 401"
grep -q '"code":"invalid_api_key"' "$work/body" || fail "401 body: $(cat "$work/body")"
H=(-H "Authorization: Bearer $key" -H "Content-Type: application/json")
[ "$(code "${H[@]}" "$url/v1/models")" = 200 ] && grep -q '"id":"dsv4-e2e"' "$work/body" || fail "/v1/models: $(cat "$work/body")"
[ "$(code "${H[@]}" -d '{"messages": [' "$url/v1/chat/completions")" = 400 ] || fail "invalid JSON should be 400"
grep -q '"type":"invalid_request_error"' "$work/body" || fail "invalid JSON body: $(cat "$work/body")"
[ "$(code "${H[@]}" -d '{"messages":[{"role":"robot","content":"x"}]}' "$url/v1/chat/completions")" = 400 ] ||
  fail "unknown role should be 400"
curl -sN "${H[@]}" -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"temperature":0,"stream":true}' \
  "$url/v1/chat/completions" >"$work/sse.txt" || fail "streaming request failed"
[ "$(tail -c 14 "$work/sse.txt" | od -An -c | tr -d ' \n')" = 'data:[DONE]\n\n' ] ||
  fail "SSE stream does not end with data: [DONE]: $(tail -c 200 "$work/sse.txt")"
[ "$(grep -c '^data: {' "$work/sse.txt")" -ge 3 ] || fail "too few SSE chunks: $(cat "$work/sse.txt")"
grep -v '^data: ' "$work/sse.txt" | grep -qv '^$' && fail "SSE stream has lines that are neither data nor blank"

# ---- the OpenAI SDK, then the page -----------------------------------------------------------
node "$js/server_e2e.mjs" "$url" dsv4-e2e "$key" || fail "server_e2e.mjs (OpenAI SDK checks)"
node "$js/page_test.mjs" "$url" "$key" "$work/page.png" || fail "page_test.mjs (web page in Chromium)"

kill -0 "$pid" 2>/dev/null || fail "the server died"
kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "the server did not stop on SIGTERM"
wait "$pid" || fail "the server exited with status $?"
trap - EXIT
echo "server_e2e: OK (screenshot $work/page.png)"
