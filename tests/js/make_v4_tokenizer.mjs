// Writes the DeepSeek-V4 tokenizer files from DeepSeek-V3's tokenizer.json (spec 8.6):
//   node make_v4_tokenizer.mjs V3_TOKENIZER_JSON OUTDIR
// V4 keeps V3's vocabulary, merges, pre-tokenizer and the added tokens 0..2 and 128000..128814,
// and adds the V4 tokens listed with ids in spec 8.6. Ids the spec leaves unnamed (128815-128820,
// 129262-129278) stay empty. Also writes tokenizer_config.json per spec 8.1 (no BOS/EOS added).
// Deterministic: the same input gives the same bytes.
import fs from "node:fs";
import path from "node:path";

const [, , v3Path, outDir] = process.argv;
if (!v3Path || !outDir) {
  console.error("usage: node make_v4_tokenizer.mjs V3_TOKENIZER_JSON OUTDIR");
  process.exit(2);
}

const FW = "\uFF5C"; // ｜ FULLWIDTH VERTICAL LINE
const SP = "\u2581"; // ▁ LOWER ONE EIGHTH BLOCK
const fw = (name) => `<${FW}${name.replaceAll(" ", SP)}${FW}>`;

// [id, content] in id order (spec 8.6 table).
const V4_TOKENS = [
  [128821, "<think>"],
  [128822, "</think>"],
  [128823, fw("place holder for copy")],
  [128824, fw("place holder for pointer replace")],
  [128825, `${FW}DSML${FW}`],
  [128826, fw("begin sys")],
  [128827, fw("end sys")],
  [128828, fw("latest_reminder")],
  [128829, fw("action")],
  [128830, fw("query")],
  [128831, fw("authority")],
  [128832, fw("domain")],
  [128833, fw("task")],
  [128834, fw("political")],
  [128835, fw("entity")],
  [128836, fw("title")],
  [128837, fw("safety")],
  [128838, fw("answer")],
  [128839, fw("search")],
  [128840, "<dsml:"],
  [128841, "</dsml:"],
  [128842, fw("search begin")],
  [128843, fw("search end")],
  [128844, fw("extracted_url")],
  [128845, fw("read_url")],
  [128846, fw("end_of_query")],
];
// Multimodal placeholders: 128847 + (n - 21) for n = 21..435, ASCII '|' and '_'.
const MM_FIRST_ID = 128847;
for (let n = 21; n <= 435; n++) {
  V4_TOKENS.push([MM_FIRST_ID + n - 21, `<|place_holder_mm_span_${String(n).padStart(4, "0")}|>`]);
}
V4_TOKENS.push([129279, fw("image")]);

const v3 = JSON.parse(fs.readFileSync(v3Path, "utf8"));
const fail = (msg) => {
  console.error(`make_v4_tokenizer: ${v3Path}: ${msg}`);
  process.exit(1);
};
if (!Array.isArray(v3.added_tokens) || !v3.model || !v3.model.vocab) fail("not a tokenizer.json");
const vocabSize = Object.keys(v3.model.vocab).length;
if (vocabSize !== 128000) fail(`expected 128000 vocabulary entries, got ${vocabSize}`);
const byId = new Map(v3.added_tokens.map((t) => [t.id, t]));
// The ids V4 reuses from V3 must hold what the spec says.
const expectV3 = [[0, fw("begin of sentence")], [1, fw("end of sentence")], [128803, fw("User")], [128804, fw("Assistant")]];
for (const [id, content] of expectV3) {
  if (!byId.has(id) || byId.get(id).content !== content) fail(`id ${id} is not ${content}`);
}
const contents = new Set(v3.added_tokens.map((t) => t.content));
for (const [id, content] of V4_TOKENS) {
  if (byId.has(id)) fail(`id ${id} is already taken by ${byId.get(id).content}`);
  if (contents.has(content)) fail(`${content} is already an added token`);
  const placeholder = content.startsWith("<|place_holder_mm_span_");
  // Named markers follow V3's convention for its role markers (<｜User｜>: special false,
  // normalized true); placeholders follow V3's placeholders (special true, normalized false).
  v3.added_tokens.push({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: !placeholder,
    special: placeholder,
  });
}
v3.added_tokens.sort((a, b) => a.id - b.id);

const config = {
  add_bos_token: false,
  add_eos_token: false,
  bos_token: { __type: "AddedToken", content: fw("begin of sentence"), lstrip: false, normalized: true, rstrip: false, single_word: false },
  clean_up_tokenization_spaces: false,
  eos_token: { __type: "AddedToken", content: fw("end of sentence"), lstrip: false, normalized: true, rstrip: false, single_word: false },
  legacy: true,
  model_max_length: 1048576,
  pad_token: { __type: "AddedToken", content: fw("end of sentence"), lstrip: false, normalized: true, rstrip: false, single_word: false },
  sp_model_kwargs: {},
  unk_token: null,
  tokenizer_class: "PreTrainedTokenizerFast",
};

fs.mkdirSync(outDir, { recursive: true });
const write = (name, obj) => {
  const tmp = path.join(outDir, `${name}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(obj, null, 1) + "\n");
  fs.renameSync(tmp, path.join(outDir, name));
};
write("tokenizer.json", v3);
write("tokenizer_config.json", config);
console.log(`make_v4_tokenizer: wrote ${outDir}/tokenizer.json (${v3.added_tokens.length} added tokens) and tokenizer_config.json`);
