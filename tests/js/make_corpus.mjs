// Deterministic tokenizer test corpus (valid UTF-8 only), written by us from word lists and
// templates with a seeded generator: English prose, code in several languages, Chinese, Japanese,
// Korean, digit runs, emoji sequences, odd whitespace (tabs, CRLF, runs of spaces, trailing and
// Unicode spaces), combining marks, added-token strings and other edge cases.
//   node make_corpus.mjs OUT_PREFIX [MIN_BYTES]
// writes OUT_PREFIX.jsonl (one JSON string per record; records may hold newlines) and
// OUT_PREFIX.txt (all records concatenated, for the benchmark and the whole-file comparison).
import fs from "node:fs";

const [, , prefix, minBytesArg] = process.argv;
if (!prefix) {
  console.error("usage: node make_corpus.mjs OUT_PREFIX [MIN_BYTES]");
  process.exit(2);
}
const MIN_BYTES = Number(minBytesArg ?? 1200000);

// mulberry32: small, fast, deterministic.
let seed = 0x5eed1234;
function rnd() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = (a) => a[Math.floor(rnd() * a.length)];
const repeat = (n, f) => Array.from({ length: n }, f);

const WORDS = ("the of and to in is it that was for on are with as be at by this have from or one had not but what all " +
  "were when we there can an your which their said if do will each about how up out them then she many some so these " +
  "would other into has more her two like him see time could no make than first been its who now people my made over " +
  "did down only way find use may water long little very after words called just where most know tokenizer model " +
  "inference attention sparse compressed latent expert routing gradient quantisation checkpoint throughput latency " +
  "kernel matrix vector embedding position rotary window cache prefix sentence paragraph naive café résumé façade " +
  "coöperate Zürich São Paulo Kraków Ångström naïve jalapeño piñata über straße déjà vu").split(" ");
const NAMES = ["Ada", "Alan", "Grace", "Linus", "Barbara", "Edsger", "Donald", "Margaret", "Ken", "Dennis", "Bjarne", "Guido"];
const PUNCT_END = [".", ".", ".", "!", "?", "...", "?!", ";", ":", "…"];

function sentence() {
  const n = int(3, 18);
  const w = repeat(n, () => pick(WORDS));
  w[0] = w[0][0].toUpperCase() + w[0].slice(1);
  if (rnd() < 0.3) w.splice(int(0, n - 1), 0, pick(NAMES));
  if (rnd() < 0.2) w.splice(int(0, n - 1), 0, pick(["don't", "it's", "I'm", "we'll", "they've", "he'd", "O'Neil", "rock'n'roll"]));
  if (rnd() < 0.2) w.splice(int(0, n - 1), 0, `"${pick(WORDS)}"`);
  if (rnd() < 0.15) w.splice(int(0, n - 1), 0, `(${pick(WORDS)} ${pick(WORDS)})`);
  if (rnd() < 0.15) w.splice(int(0, n - 1), 0, pick(["e.g.", "i.e.", "etc.", "vs.", "Dr.", "U.S.A.", "a.m.", "--", "—", "–", "&", "@home", "#tag", "$HOME", "50%", "C++", "C#", "F#", ".NET", "node.js", "x86-64", "UTF-8"]));
  let s = w.join(rnd() < 0.05 ? "  " : " ");
  if (rnd() < 0.3) s = s.replace(" ", ", ");
  return s + pick(PUNCT_END);
}

function prose() {
  return repeat(int(1, 6), sentence).join(rnd() < 0.9 ? " " : "  ");
}

const IDENTS = ["x", "y", "i", "j", "n", "count", "buf", "result", "value", "key", "node", "next_ptr", "camelCase", "snake_case_name", "HTTPServer", "__init__", "_private", "kMaxSize", "T", "Vec3f", "utf8_len", "é_var", "переменная", "变量"];
const ind = (level, style) => (style === "tab" ? "\t".repeat(level) : " ".repeat(level * style));

function code_c(style) {
  const f = pick(IDENTS), a = pick(IDENTS), b = pick(IDENTS);
  return [
    `#include <stdio.h>`,
    `static int ${f}(const char *${a}, size_t ${b}) {`,
    `${ind(1, style)}if (${a} == NULL || ${b} == 0) return -1;`,
    `${ind(1, style)}for (size_t i = 0; i < ${b}; ++i) {`,
    `${ind(2, style)}${a}[i] ^= 0x${int(0, 255).toString(16).padStart(2, "0")}; /* xor */`,
    `${ind(2, style)}printf("%zu: %d\\n", i, (int)${a}[i]);`,
    `${ind(1, style)}}`,
    `${ind(1, style)}return ${b} >> ${int(1, 7)} & ~0u; // done`,
    `}`,
  ].join("\n");
}

function code_py(style) {
  const f = pick(IDENTS), a = pick(IDENTS);
  return [
    `def ${f}(${a}: list[int], *, scale: float = ${int(0, 99)}.${int(0, 9)}) -> dict:`,
    `${ind(1, style)}"""Return a histogram of ${a}."""`,
    `${ind(1, style)}out = {}`,
    `${ind(1, style)}for k in ${a}:`,
    `${ind(2, style)}out[k] = out.get(k, 0) + 1  # count`,
    `${ind(1, style)}if not out:`,
    `${ind(2, style)}raise ValueError(f"empty: {${a}!r}")`,
    `${ind(1, style)}return {k: v * scale for k, v in sorted(out.items())}`,
    ``,
    `print(${f}([${repeat(int(1, 8), () => int(0, 1000)).join(", ")}]))`,
  ].join("\n");
}

function code_js(style) {
  const f = pick(IDENTS);
  return [
    `export async function ${f}(url, opts = {}) {`,
    `${ind(1, style)}const res = await fetch(\`\${url}/api/v${int(1, 3)}?q=\${encodeURIComponent(opts.q ?? "")}\`);`,
    `${ind(1, style)}if (!res.ok) throw new Error(\`HTTP \${res.status}\`);`,
    `${ind(1, style)}return (await res.json()).items?.map((x) => x.id) ?? [];`,
    `}`,
    `const re = /^[a-z0-9_-]{3,16}$/i; let n = 0b1010 | 0o17 | 0xff; n **= 2; n >>>= 1;`,
  ].join("\n");
}

function code_rust(style) {
  return [
    `impl<'a, T: Clone + Send> Iterator for Chunks<'a, T> {`,
    `${ind(1, style)}type Item = &'a [T];`,
    `${ind(1, style)}fn next(&mut self) -> Option<Self::Item> {`,
    `${ind(2, style)}let n = self.size.min(self.rest.len()); // ${pick(WORDS)}`,
    `${ind(2, style)}if n == 0 { return None; }`,
    `${ind(2, style)}let (a, b) = self.rest.split_at(n); self.rest = b; Some(a)`,
    `${ind(1, style)}}`,
    `}`,
  ].join("\n");
}

function code_misc() {
  return pick([
    () => `SELECT u.id, COUNT(*) AS n FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total >= ${int(1, 9999)}.${int(10, 99)} GROUP BY u.id HAVING n > ${int(1, 9)};`,
    () => `<div class="card" data-id="${int(1, 99999)}"><p>${sentence()}</p><a href="https://example.com/a?b=1&amp;c=2#x">link</a></div>`,
    () => JSON.stringify({ id: int(1, 1e6), name: pick(NAMES), tags: [pick(WORDS), pick(WORDS)], ok: rnd() < 0.5, score: rnd() }, null, pick([0, 2, 4])),
    () => `for f in *.txt; do grep -E '^[0-9]{3}-' "$f" | sed -e 's/\\t/ /g' >> "\${OUT:-out}.log" 2>&1 || exit $?; done`,
    () => `package main\n\nimport "fmt"\n\nfunc main() {\n\tch := make(chan int, ${int(1, 64)})\n\tgo func() { ch <- 42 }()\n\tfmt.Println(<-ch)\n}`,
    () => `\\begin{equation}\n  \\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2} \\quad \\forall\\, \\alpha \\in \\mathbb{R}\n\\end{equation}`,
    () => `key_${int(1, 99)}: [${repeat(int(1, 5), () => `"${pick(WORDS)}"`).join(", ")}]  # yaml\n  - nested: {a: 1, b: ~}\n`,
    () => `a=>b; a->b; a::b; a!=b; a<=b>=c; a&&b||!c; x+=1; y-=2; z*=3; w/=4; p%=5; **kwargs; ...rest; ?.; ??=; <<=; >>=; ===; !==;`,
  ])();
}

const HAN = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴切";
const HAN_OUTSIDE = "㐀㐁㑇㒳䶵𠀀𠀁𠀂𪚥𫝀豈更車賈滑﨎﨏"; // CJK Ext A/B/C/D and compatibility ideographs (outside U+4E00..U+9FA5)
const HAN_LATE = "龦龧龻鿃鿋"; // U+9FA6.. (unified, but outside the split regex's range)
const HIRA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんがぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽゃゅょっゝゞ";
const KATA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンガギグゲゴヴァィゥェォャュョッー・ヽヾ";
const HANGUL = "한국어조선말안녕하세요감사합니다대한민국서울";
const CJK_PUNCT = ["，", "。", "！", "？", "、", "：", "；", "「", "」", "『", "』", "（", "）", "【", "】", "《", "》", "〜", "…", "　"];

function cjk() {
  const parts = [];
  const n = int(2, 25);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < 0.45) parts.push(repeat(int(1, 8), () => pick([...HAN])).join(""));
    else if (r < 0.6) parts.push(repeat(int(1, 6), () => pick([...HIRA])).join(""));
    else if (r < 0.7) parts.push(repeat(int(1, 6), () => pick([...KATA])).join(""));
    else if (r < 0.75) parts.push(repeat(int(1, 4), () => pick([...HANGUL])).join(""));
    else if (r < 0.8) parts.push(pick([...HAN_OUTSIDE]) + pick([...HAN_LATE]));
    else if (r < 0.9) parts.push(pick(CJK_PUNCT));
    else if (r < 0.95) parts.push(String(int(0, 99999)));
    else parts.push(pick(WORDS));
  }
  return parts.join(rnd() < 0.8 ? "" : " ");
}

function digits() {
  return pick([
    () => String(int(0, 9)).repeat(int(1, 40)),
    () => repeat(int(1, 6), () => String(int(0, 1e9))).join(pick([" ", ",", ".", "", "-", "/", ":"])),
    () => `${int(0, 999)},${String(int(0, 999)).padStart(3, "0")},${String(int(0, 999)).padStart(3, "0")}.${int(0, 99)}`,
    () => `${int(1, 9)}.${int(0, 99999)}e-${int(1, 30)} ${-int(1, 1e6)} +${int(1, 99)} 0x${int(0, 1e9).toString(16)} ${int(1, 12)}/${int(1, 28)}/${int(1900, 2100)}`,
    () => "١٢٣٤٥٦٧٨٩٠ ۱۲۳ १२३४५ ১২৩ ๑๒๓ ０１２３４５６７８９ ²³¹ ½¼¾ ⅠⅡⅢⅫ ①②③ 𝟘𝟙𝟚",
    () => `v${int(0, 9)}.${int(0, 99)}.${int(0, 999)}-rc${int(1, 9)} build${int(1000, 999999)} ${int(1, 9)}x${int(1, 9)} ${int(10, 99)}km² ${int(0, 40)}°C`,
  ])();
}

const EMOJI = ["😀", "😂", "🥲", "🤖", "🚀", "🔥", "✨", "❤️", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "🧑🏿‍🔬", "☕", "⚡", "✅", "❌", "🙏🏻", "💯", "#️⃣", "1️⃣", "©️", "™", "🫠", "🦀", "🐍"];
function emoji() {
  return repeat(int(1, 10), () => (rnd() < 0.6 ? pick(EMOJI) : pick(WORDS))).join(pick(["", " ", "  ", "\u200d"]));
}

const COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "A\u030A", "\u0915\u094D\u0937", "\u0928\u092E\u0938\u094D\u0924\u0947", "\u0645\u064E\u0631\u0652\u062D\u064E\u0628\u064B\u0627", "\u05E9\u05B8\u05C1\u05DC\u05D5\u05B9\u05DD", "\u0E2A\u0E27\u0E31\u0E2A\u0E14\u0E35", "Vi\u1EC7t Nam", "Z\u0351\u036B\u0343a\u0310\u0357l\u0352g\u0308o\u0362", "\u0301\u0301lead", "x\u20DD", "\u1100\u1161\u11A8", "\uFE0F", "q\u0307\u0323"];
function marks() {
  return repeat(int(1, 8), () => (rnd() < 0.6 ? pick(COMBINING) : pick(WORDS))).join(pick([" ", "", "-"]));
}

const SPACES = [" ", "  ", "   ", "    ", "        ", "\t", "\t\t", " \t ", "\u00A0", "\u2003", "\u3000", "\u2009", "\u202F", "\u205F", "\u1680", "\u000B", "\u000C", "\u0085", "\u2028", "\u2029", "\r\n", "\r", "\n", "\n\n", " \n", "\t\n", "\r\n\r\n", "\n   \n"];
function whitespace() {
  const parts = [];
  for (let i = 0, n = int(2, 12); i < n; i++) parts.push(pick(SPACES), rnd() < 0.7 ? pick(WORDS) : pick([".", ":", "{", "}", "->", "//", "?", "\""]));
  if (rnd() < 0.5) parts.push(pick(SPACES));
  return parts.join("");
}

const FW = "\uFF5C", SP = "\u2581";
const SPECIAL = [`<${FW}begin${SP}of${SP}sentence${FW}>`, `<${FW}end${SP}of${SP}sentence${FW}>`, `<${FW}User${FW}>`, `<${FW}Assistant${FW}>`, "<think>", "</think>", `${FW}DSML${FW}`, `<${FW}latest_reminder${FW}>`, `<${FW}action${FW}>`, `<${FW}tool${SP}calls${SP}begin${FW}>`, "<|EOT|>", `<${FW}place${SP}holder${SP}no${SP}${int(0, 799)}${FW}>`, "<|place_holder_mm_span_0100|>", `<${FW}image${FW}>`];
function special() {
  const near = [`<${FW}Use`, "<thin", "</think", `${FW}DSML`, "<｜", "｜>", "<|", "|>", "<<think>>", "<think><think>", "</think>\n\n", "<｜User｜>", "<dsml:invoke>", "<dsml", "<｜place▁holder▁no▁800｜>"];
  return repeat(int(1, 8), () => (rnd() < 0.5 ? pick(SPECIAL) : rnd() < 0.5 ? pick(near) : sentence())).join(pick(["", " ", "\n"]));
}

function edge() {
  return pick([
    () => " ".repeat(int(1, 3000)),
    () => "a".repeat(int(100, 5000)),
    () => "\n".repeat(int(1, 50)),
    () => "\t".repeat(int(1, 100)) + "x",
    () => String.fromCodePoint(...repeat(int(1, 20), () => int(1, 31))).replace(/[\n]/g, "") + "ctl",
    () => "\u007F\u0080\u009F\u00AD\u00A0\u00FF\u0100\u017F",
    () => "\uFFFD\uFFFE\uFFFF\uE000\uF8FF\u{F0000}\u{10FFFD}\u{10FFFF}",
    () => "\u200B\u200C\u200D\u2060\uFEFF zero-width",
    () => pick(["a \u180E b", " \u180E", "\u180E ", "x\u0085 y", " \u0085", "\u0085\u0085a", "\uFEFF a", " \uFEFF", "\u00A0\u00A0x"]).repeat(int(1, 3)),
    () => "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝 𝓼𝓬𝓻𝓲𝓹𝓽 ℌℑℜ ﬁﬂ Ⅸ ㍿ ＡＢＣａｂｃ",
    () => "!!!???...,,,;;;:::---___===+++***&&&%%%$$$###@@@~~~^^^```'''\"\"\"|||\\\\\\///",
    () => "'s 't 're 've 'm 'll 'd 'S 'T 'RE ' s",
    () => repeat(int(1, 30), () => pick(["(", ")", "[", "]", "{", "}", "<", ">", "'", "\"", "`", ".", ",", "!", "?", "-", "a", "1", " ", "¿", "¡", "«", "»", "†", "‰", "€", "£", "¥", "©", "®", "°", "±", "×", "÷", "→", "∑", "√", "∞", "≠", "≤"])).join(""),
    () => "Привет, мир! Γειά σου Κόσμε! Բարեւ Გამარჯობა שלום مرحبا नमस्ते สวัสดี Xin chào",
    () => `${pick(WORDS)}.${pick(WORDS)}@example.com https://www.example.org/path/to/page.html?query=${pick(WORDS)}&x=${int(1, 99)}#frag`,
    () => "a\u0000b\u0000\u0000c",
    () => "",
  ])();
}

const KINDS = [
  [prose, 30], [() => code_c(pick([2, 4, "tab"])), 6], [() => code_py(pick([4, 2, "tab"])), 6], [() => code_js(pick([2, 4])), 4],
  [() => code_rust(4), 3], [code_misc, 6], [cjk, 12], [digits, 6], [emoji, 5], [marks, 5], [whitespace, 8], [special, 4], [edge, 5],
];
const TOTAL = KINDS.reduce((s, k) => s + k[1], 0);
function record() {
  let r = rnd() * TOTAL;
  for (const [f, w] of KINDS) if ((r -= w) < 0) return f();
  return prose();
}

const records = [];
let bytes = 0;
while (bytes < MIN_BYTES) {
  let rec = record();
  if (rnd() < 0.1) rec += pick(["  ", " ", "\t", "\r\n", "\n"]); // trailing whitespace
  if (rnd() < 0.05) rec = pick(["  ", "\t", "\n", " "]) + rec; // leading whitespace
  if (rnd() < 0.15) rec = rec.replace(/\n/g, "\r\n"); // CRLF variant
  if (rnd() < 0.2) rec = [rec, record(), record()].join(pick(["\n", "\n\n", " ", ""]));
  records.push(rec);
  bytes += Buffer.byteLength(rec, "utf8");
}
fs.writeFileSync(`${prefix}.jsonl`, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
fs.writeFileSync(`${prefix}.txt`, records.join(""));
console.log(`make_corpus: ${records.length} records, ${bytes} bytes -> ${prefix}.jsonl, ${prefix}.txt`);
