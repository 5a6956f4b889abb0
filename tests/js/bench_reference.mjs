// Encode throughput of the JS reference (@huggingface/tokenizers) on a corpus, for comparison with
// bench/bench_tokenizer.cpp (same two modes: the whole text at once, and one call per line).
//   node bench_reference.mjs TOKENIZER_DIR CORPUS.txt [SECONDS_PER_MODE]
import fs from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [, , dir, corpusPath, secondsArg] = process.argv;
if (!dir || !corpusPath) {
  console.error("usage: node bench_reference.mjs TOKENIZER_DIR CORPUS.txt [SECONDS_PER_MODE]");
  process.exit(2);
}
const seconds = Number(secondsArg ?? 5);
const json = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
const cfgPath = path.join(dir, "tokenizer_config.json");
const tok = new Tokenizer(json, fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {});
const text = fs.readFileSync(corpusPath, "utf8");
const bytes = Buffer.byteLength(text, "utf8");
const lines = text.split(/(?<=\n)/);
const encode = (t) => tok.encode(t, { add_special_tokens: false }).ids.length;

function measure(name, fn) {
  fn(); // warm-up (JIT, caches)
  let runs = 0;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  let elapsed = 0;
  while (elapsed < seconds || runs < 2) {
    fn();
    runs++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  const c1 = process.cpuUsage(c0);
  const cpu = (c1.user + c1.system) / 1e6;
  const mb = (bytes * runs) / 1e6;
  console.log(`${name}: ${runs} runs, ${(elapsed / runs * 1000).toFixed(1)} ms/run wall, ` +
    `${(mb / elapsed).toFixed(2)} MB/s wall, ${(mb / cpu).toFixed(2)} MB/s CPU (incl. GC threads)`);
}
measure("js_encode_whole", () => encode(text));
measure("js_encode_lines", () => lines.reduce((n, l) => n + encode(l), 0));
