// Shopify Theme Check on the theme app extension (the same checks the Shopify CLI runs): prints every offense,
// exits 1 when any has severity error (0) or, with --strict, any offense at all.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { check } from "@shopify/theme-check-node";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "extensions", "bitrecs-widget");
const strict = process.argv.includes("--strict");
const offenses = await check(root);
const names = ["error", "warning", "info"];
for (const o of offenses) {
  const where = `${path.relative(root, fileURLToPath(o.uri))}:${(o.start?.line ?? 0) + 1}`;
  console.log(`${names[o.severity] ?? o.severity}\t${o.check}\t${where}\t${o.message}`);
}
const errors = offenses.filter((o) => o.severity === 0).length;
console.log(`theme-check: ${offenses.length} offenses, ${errors} errors`);
process.exit(errors > 0 || (strict && offenses.length > 0) ? 1 : 0);
