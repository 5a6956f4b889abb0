// Prints the first records whose ids differ between two id files (one line per record).
//   node report_mismatch.mjs CORPUS.jsonl A.ids B.ids
import fs from "node:fs";
const [, , corpus, aPath, bPath] = process.argv;
const recs = fs.readFileSync(corpus, "utf8").split("\n");
const a = fs.readFileSync(aPath, "utf8").split("\n");
const b = fs.readFileSync(bPath, "utf8").split("\n");
if (a.length !== b.length) console.log(`line counts differ: ${a.length} vs ${b.length}`);
let shown = 0;
for (let i = 0; i < Math.max(a.length, b.length) && shown < 5; i++) {
  if (a[i] === b[i]) continue;
  shown++;
  console.log(`record ${i + 1}: ${recs[i]?.slice(0, 300)}`);
  console.log(`  reference: ${a[i]?.slice(0, 300)}`);
  console.log(`  dsv4:      ${b[i]?.slice(0, 300)}`);
}
