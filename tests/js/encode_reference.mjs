// Reference encodings with @huggingface/tokenizers (pure JS, Hugging Face's own port):
//   node encode_reference.mjs TOKENIZER_DIR CORPUS.jsonl OUT_IDS     one line of ids per record
//   node encode_reference.mjs TOKENIZER_DIR --whole FILE OUT_IDS     ids of the whole file
// No BOS/EOS is added (add_special_tokens: false); added tokens are matched in the text.
import fs from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [, , dir, a, b, c] = process.argv;
if (!dir || !a || !b) {
  console.error("usage: node encode_reference.mjs TOKENIZER_DIR (CORPUS.jsonl | --whole FILE) OUT_IDS");
  process.exit(2);
}
export function loadTokenizer(tokDir) {
  const json = JSON.parse(fs.readFileSync(path.join(tokDir, "tokenizer.json"), "utf8"));
  const cfgPath = path.join(tokDir, "tokenizer_config.json");
  const cfg = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
  return new Tokenizer(json, cfg);
}
const tok = loadTokenizer(dir);
const encode = (text) => tok.encode(text, { add_special_tokens: false }).ids;
if (a === "--whole") {
  fs.writeFileSync(c, encode(fs.readFileSync(b, "utf8")).join(" ") + "\n");
} else {
  const lines = fs.readFileSync(a, "utf8").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const out = lines.map((l) => encode(JSON.parse(l)).join(" "));
  fs.writeFileSync(b, out.join("\n") + "\n");
}
