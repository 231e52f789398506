#!/usr/bin/env node
// Turns forge's broadcast log of contracts/script/Deploy.s.sol into the deployment file that
// the Rust services read:
//   { "chainId": <number>, "secretsController": "0x..", "clusterRegistry": "0x..",
//     "block": <first block of the run> }
// "block" is the lowest block of any transaction of the run (services scan logs from it; the
// registrations of the run are included even if a node mined them out of list order).
// Usage: deployment-record.js <broadcast run-latest.json> <output file>
'use strict';

const fs = require('node:fs');
const path = require('node:path');

function fail(message) {
  process.stderr.write(`deployment-record: ${message}\n`);
  process.exit(1);
}

const [input, output] = process.argv.slice(2);
if (!input || !output) fail('usage: deployment-record.js <run-latest.json> <output.json>');

const run = JSON.parse(fs.readFileSync(input, 'utf8'));
const created = (name) => {
  const tx = (run.transactions || []).find(
    (t) => t.transactionType === 'CREATE' && t.contractName === name,
  );
  if (!tx) fail(`no ${name} deployment in ${input}`);
  return { address: tx.contractAddress, hash: tx.hash };
};
const registry = created('ClusterRegistry');
const controller = created('SecretsController');

const receipts = run.receipts || [];
for (const tx of [registry, controller]) {
  if (!receipts.some((x) => x.transactionHash === tx.hash)) fail(`no receipt for ${tx.hash}`);
}
for (const r of receipts) {
  if (r.status !== undefined && Number(r.status) !== 1) fail(`transaction ${r.transactionHash} failed`);
}
const firstBlock = Math.min(...receipts.map((r) => Number(BigInt(r.blockNumber))));
const chainId = Number(run.chain);
if (!Number.isSafeInteger(chainId) || chainId <= 0) fail(`bad chain id ${run.chain}`);

const record = {
  chainId,
  secretsController: controller.address,
  clusterRegistry: registry.address,
  block: firstBlock,
};
fs.mkdirSync(path.dirname(output), { recursive: true });
fs.writeFileSync(output, `${JSON.stringify(record, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(record)}\n`);
