// End-to-end checks of `dsv4 serve` with the official OpenAI SDK and raw fetch:
//   node server_e2e.mjs <base-url> <model-name> <api-key>
// Exits non-zero with a message on the first failed check. Uses temperature 0 throughout where
// outputs are compared, so a random-weight model gives reproducible text.
import OpenAI from "openai";

const [base, model, apiKey] = process.argv.slice(2);
if (!base || !model || !apiKey) {
  console.error("usage: node server_e2e.mjs <base-url> <model> <api-key>");
  process.exit(2);
}
const client = new OpenAI({ baseURL: base + "/v1", apiKey, maxRetries: 0, timeout: 120000 });
const auth = { Authorization: "Bearer " + apiKey, "Content-Type": "application/json" };
let checks = 0;

function check(cond, what, detail) {
  if (!cond) {
    console.error("server_e2e: FAIL: " + what + (detail !== undefined ? "\n  " + JSON.stringify(detail) : ""));
    process.exit(1);
  }
  checks++;
}

const user = (content) => [{ role: "user", content }];
const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city"] },
  },
};

// Parses a raw SSE body strictly: events separated by a blank line, only "data:" fields (or
// ":" comments), JSON payloads, exactly one final [DONE] and nothing after it.
function parseSSE(text) {
  check(text.endsWith("data: [DONE]\n\n"), "SSE body ends with data: [DONE]", text.slice(-80));
  const blocks = text.slice(0, -2).split("\n\n");
  const events = [];
  let done = 0;
  for (const b of blocks) {
    if (b.startsWith(":")) continue;  // keep-alive comment
    check(b.startsWith("data: ") && !b.includes("\n"), "SSE event is one data line", b);
    const data = b.slice(6);
    if (data === "[DONE]") { done++; continue; }
    check(done === 0, "no event after [DONE]", b);
    events.push(JSON.parse(data));
  }
  check(done === 1, "exactly one [DONE]");
  return events;
}

async function post(path, body, headers = auth) {
  const r = await fetch(base + path, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, type: r.headers.get("content-type") || "", text };
}

function isErrorObject(j) {
  return j && j.error && typeof j.error.message === "string" && typeof j.error.type === "string" &&
    "param" in j.error && "code" in j.error;
}

// Collects a streamed chat completion the way an application does.
async function streamChat(params, { abortAfter = -1 } = {}) {
  const controller = new AbortController();
  const stream = await client.chat.completions.create({ ...params, stream: true }, { signal: controller.signal });
  const out = { role: null, content: "", reasoning: "", tools: [], finish: null, usage: null, chunks: 0, aborted: false };
  try {
    for await (const chunk of stream) {
      out.chunks++;
      check(chunk.object === "chat.completion.chunk", "chunk object", chunk);
      if (chunk.usage) out.usage = chunk.usage;
      const ch = chunk.choices[0];
      if (!ch) continue;
      if (ch.finish_reason) {
        check(out.finish === null, "one finish_reason per stream", chunk);
        out.finish = ch.finish_reason;
      }
      const d = ch.delta || {};
      if (d.role) out.role = d.role;
      if (d.content) out.content += d.content;
      if (d.reasoning_content) out.reasoning += d.reasoning_content;
      for (const t of d.tool_calls || []) {
        if (!out.tools[t.index]) out.tools[t.index] = { id: t.id, name: t.function.name, arguments: "" };
        out.tools[t.index].arguments += t.function.arguments || "";
      }
      if (abortAfter >= 0 && out.chunks > abortAfter) {
        out.aborted = true;
        controller.abort();
        break;
      }
    }
  } catch (e) {
    if (!out.aborted) throw e;
  }
  return out;
}

async function health() {
  const r = await fetch(base + "/health");
  check(r.status === 200, "GET /health is 200 (server alive)");
  return r.json();
}

// ---- models -----------------------------------------------------------------------------------
const models = await client.models.list();
check(models.data.some((m) => m.id === model), "models.list contains " + model, models.data);

// ---- chat, non-streaming vs streaming ---------------------------------------------------------
const base1 = { model, messages: user("Tell me a story about a lighthouse."), temperature: 0, max_tokens: 8 };
const full = await client.chat.completions.create(base1);
check(full.object === "chat.completion" && full.id.startsWith("chatcmpl-"), "chat.completion object", full);
check(full.choices.length === 1 && full.choices[0].message.role === "assistant", "one assistant choice", full);
check(["stop", "length"].includes(full.choices[0].finish_reason), "finish_reason", full.choices[0]);
check(typeof full.choices[0].message.content === "string" && full.choices[0].message.content.length > 0, "non-empty content", full);
const u = full.usage;
check(u.prompt_tokens > 5 && u.completion_tokens >= 1 && u.completion_tokens <= 8 && u.total_tokens === u.prompt_tokens + u.completion_tokens,
  "usage numbers", u);
if (full.choices[0].finish_reason === "length") check(u.completion_tokens === 8, "length finish used max_tokens", u);

const again = await client.chat.completions.create(base1);
check(again.choices[0].message.content === full.choices[0].message.content, "temperature 0 is reproducible");

const streamed = await streamChat({ ...base1, stream_options: { include_usage: true } });
check(streamed.role === "assistant", "first delta carries the role", streamed);
check(streamed.content === full.choices[0].message.content, "streamed content equals non-streamed",
  { streamed: streamed.content, full: full.choices[0].message.content });
check(streamed.finish === full.choices[0].finish_reason, "streamed finish_reason", streamed);
check(streamed.usage && streamed.usage.completion_tokens === u.completion_tokens && streamed.usage.prompt_tokens === u.prompt_tokens,
  "stream_options.include_usage gives the same usage", streamed.usage);
const noUsage = await streamChat(base1);
check(noUsage.usage === null, "no usage chunk without include_usage", noUsage);

// raw SSE framing (curl-like)
const raw = await post("/v1/chat/completions", { ...base1, stream: true, stream_options: { include_usage: true } });
check(raw.status === 200 && raw.type.startsWith("text/event-stream"), "SSE content type", raw.type);
const events = parseSSE(raw.text);
check(events.at(-1).choices.length === 0 && events.at(-1).usage.total_tokens === u.total_tokens, "last event is the usage chunk", events.at(-1));
check(events.every((e) => e.id === events[0].id), "one id per stream");

// seeded sampling is reproducible, and different seeds differ (almost surely, 129k vocabulary)
const seeded = { model, messages: user("Sample something"), temperature: 1.0, max_tokens: 6 };
const s1 = await client.chat.completions.create({ ...seeded, seed: 42 });
const s2 = await client.chat.completions.create({ ...seeded, seed: 42 });
const s3 = await client.chat.completions.create({ ...seeded, seed: 43 });
check(s1.choices[0].message.content === s2.choices[0].message.content, "same seed, same text");
check(s1.choices[0].message.content !== s3.choices[0].message.content, "different seed, different text");

// stop strings: cut at the first occurrence of a piece of the known answer, never emitted
const answer = full.choices[0].message.content;
const cut = answer.slice(Math.floor(answer.length / 2), Math.floor(answer.length / 2) + 2);
if (cut.trim().length === 2) {
  const stopped = await client.chat.completions.create({ ...base1, stop: [cut] });
  check(stopped.choices[0].message.content === answer.slice(0, answer.indexOf(cut)) && stopped.choices[0].finish_reason === "stop",
    "stop string cuts the text", { answer, cut, got: stopped.choices[0].message.content });
}

// ---- thinking mode ------------------------------------------------------------------------
const think = { model, messages: user("Why is the sky blue?"), temperature: 0, max_tokens: 6, chat_template_kwargs: { thinking: true } };
const thinkFull = await client.chat.completions.create(think);
const thinkStream = await streamChat(think);
check(typeof thinkFull.choices[0].message.reasoning_content === "string" && thinkFull.choices[0].message.reasoning_content.length > 0,
  "thinking mode returns reasoning_content", thinkFull.choices[0].message);
check(thinkStream.reasoning === thinkFull.choices[0].message.reasoning_content, "reasoning streamed as reasoning_content deltas",
  { stream: thinkStream.reasoning, full: thinkFull.choices[0].message.reasoning_content });
const effort = await client.chat.completions.create({ ...think, chat_template_kwargs: undefined, reasoning_effort: "high" });
check(effort.choices[0].message.reasoning_content === thinkFull.choices[0].message.reasoning_content,
  "reasoning_effort selects the same thinking prompt");

// ---- tools: rendered into the prompt, accepted, well-formed --------------------------------
const plain = await client.chat.completions.create({ model, messages: user("What is the weather in Paris?"), temperature: 0, max_tokens: 4 });
const withTools = await client.chat.completions.create({ model, messages: user("What is the weather in Paris?"), temperature: 0, max_tokens: 4,
  tools: [weatherTool], tool_choice: "auto" });
check(withTools.usage.prompt_tokens > plain.usage.prompt_tokens + 100, "tools are rendered into the prompt",
  { plain: plain.usage.prompt_tokens, tools: withTools.usage.prompt_tokens });
const noneChoice = await client.chat.completions.create({ model, messages: user("What is the weather in Paris?"), temperature: 0, max_tokens: 4,
  tools: [weatherTool], tool_choice: "none" });
check(noneChoice.usage.prompt_tokens === plain.usage.prompt_tokens, "tool_choice none keeps tools out of the prompt");
const toolStream = await streamChat({ model, messages: user("Weather?"), temperature: 0, max_tokens: 4, tools: [weatherTool] });
check(toolStream.finish !== null, "tool request streams to a finish", toolStream);
const followUp = await client.chat.completions.create({
  model, temperature: 0, max_tokens: 4, tools: [weatherTool],
  messages: [
    { role: "system", content: "You are a weather bot." },
    { role: "user", content: "Weather in Paris and Rome?" },
    { role: "assistant", content: null, tool_calls: [
      { id: "call_a", type: "function", function: { name: "get_weather", arguments: JSON.stringify({ city: "Paris" }) } },
      { id: "call_b", type: "function", function: { name: "get_weather", arguments: JSON.stringify({ city: "Rome", days: 2 }) } }] },
    { role: "tool", tool_call_id: "call_b", content: "rome: 25C" },
    { role: "tool", tool_call_id: "call_a", content: "paris: 18C" },
  ],
});
check(followUp.choices[0].message.role === "assistant" && followUp.usage.prompt_tokens > withTools.usage.prompt_tokens,
  "tool calls + tool results conversation accepted", followUp.usage);

// ---- legacy completions ------------------------------------------------------------------
const comp = await client.completions.create({ model, prompt: "The quick brown fox", max_tokens: 5, temperature: 0 });
check(comp.object === "text_completion" && typeof comp.choices[0].text === "string" && comp.usage.completion_tokens <= 5, "completions", comp);
let compText = "", compUsage = null;
for await (const c of await client.completions.create({ model, prompt: "The quick brown fox", max_tokens: 5, temperature: 0, stream: true,
  stream_options: { include_usage: true } })) {
  if (c.choices[0]) compText += c.choices[0].text;
  if (c.usage) compUsage = c.usage;
}
check(compText === comp.choices[0].text && compUsage && compUsage.total_tokens === comp.usage.total_tokens, "streamed completions", { compText, compUsage });

// ---- errors: OpenAI error JSON, 4xx, server keeps serving ----------------------------------
async function sdkError(params) {
  try {
    await client.chat.completions.create(params);
  } catch (e) {
    return e;
  }
  check(false, "request should fail", params);
}
const badRole = await sdkError({ model, messages: [{ role: "wizard", content: "x" }] });
check(badRole.status === 400 && badRole.error.param === "messages[0].role", "unknown role -> 400", badRole.error);
const badModel = await sdkError({ model: "gpt-nonexistent", messages: user("x") });
check(badModel.status === 404 && badModel.code === "model_not_found", "unknown model -> 404", badModel.error);
const badType = await sdkError({ model, messages: user("x"), temperature: "warm" });
check(badType.status === 400 && badType.error.param === "temperature", "bad type -> 400", badType.error);
const tooLong = await sdkError({ model, messages: user("word ".repeat(3000)) });
check(tooLong.status === 400 && tooLong.code === "context_length_exceeded", "prompt beyond the context -> 400", tooLong.error);
const tooMany = await sdkError({ model, messages: user("x"), max_tokens: 1 << 20 });
check(tooMany.status === 400 && tooMany.code === "context_length_exceeded", "max_tokens beyond the context -> 400", tooMany.error);
const nTwo = await sdkError({ model, messages: user("x"), n: 2 });
check(nTwo.status === 400 && nTwo.error.param === "n", "n=2 -> 400", nTwo.error);
for (const [what, body] of [["invalid JSON", "{\"messages\": [}"], ["empty body", ""], ["array body", "[1]"],
                            ["no messages", "{}"], ["messages not an array", "{\"messages\": 3}"]]) {
  const r = await post("/v1/chat/completions", body);
  check(r.status === 400 && isErrorObject(JSON.parse(r.text)), what + " -> 400 with error JSON", r);
}
const noKey = await post("/v1/chat/completions", base1, { "Content-Type": "application/json" });
check(noKey.status === 401 && JSON.parse(noKey.text).error.code === "invalid_api_key", "missing API key -> 401", noKey);
const wrongKey = await post("/v1/chat/completions", base1, { ...auth, Authorization: "Bearer nope" });
check(wrongKey.status === 401 && isErrorObject(JSON.parse(wrongKey.text)), "wrong API key -> 401", wrongKey);
const unknown = await fetch(base + "/v1/nothing", { headers: auth });
check(unknown.status === 404 && isErrorObject(await unknown.json()), "unknown route -> 404 error JSON");
await health();

// ---- tokenize / detokenize -----------------------------------------------------------------
const tk = JSON.parse((await post("/tokenize", { content: "Hello world" })).text);
check(Array.isArray(tk.tokens) && tk.tokens.length === 2, "/tokenize", tk);
const dt = JSON.parse((await post("/detokenize", { tokens: tk.tokens })).text);
check(dt.content === "Hello world", "/detokenize round trip", dt);
check((await post("/detokenize", { tokens: [-1] })).status === 400, "/detokenize bad id -> 400");

// ---- concurrency: 16 streaming clients, 4 disconnect mid-stream ------------------------------
const prompts = ["Write a haiku about rain.", "List three colours.", "What is 2 + 2?", "Describe a cat."];
const solo = [];
for (const p of prompts) solo.push(await client.chat.completions.create({ model, messages: user(p), temperature: 0, max_tokens: 8 }));
const clients = [];
for (let i = 0; i < 16; i++) {
  const p = prompts[i % prompts.length];
  clients.push(streamChat({ model, messages: user(p), temperature: 0, max_tokens: 8, stream_options: { include_usage: true } },
    { abortAfter: i % 4 === 3 ? 2 : -1 }).then((r) => ({ i, p, r })));
}
const results = await Promise.all(clients);
for (const { i, r } of results) {
  const ref = solo[i % prompts.length];
  if (r.aborted) continue;
  check(r.role === "assistant" && r.finish === ref.choices[0].finish_reason, `client ${i}: well-formed stream`, r);
  check(r.content === ref.choices[0].message.content, `client ${i}: equals the single-client result at temperature 0`,
    { got: r.content, solo: ref.choices[0].message.content });
  check(r.usage && r.usage.completion_tokens === ref.usage.completion_tokens, `client ${i}: usage`, r.usage);
}
check(results.filter((x) => x.r.aborted).length === 4, "4 clients disconnected mid-stream");
// the disconnected generations are cancelled: the server drains to idle
let h;
for (let k = 0; k < 100; k++) {
  h = await health();
  if (h.active === 0 && h.queued === 0) break;
  await new Promise((r) => setTimeout(r, 100));
}
check(h.active === 0 && h.queued === 0, "server idle after the storm", h);
const after = await client.chat.completions.create({ model, messages: user(prompts[0]), temperature: 0, max_tokens: 8 });
check(after.choices[0].message.content === solo[0].choices[0].message.content, "results unchanged after the storm");

console.log(`server_e2e: OK (${checks} checks)`);
