#!/usr/bin/env node
// solc front-end: makes solcjs (npm `solc`, WebAssembly) answer like the native compiler,
// for py-solc-x (`solc_binary=`) and Brownie (~/.solcx/solc-v<version>).
//
//   solc --version                      -> "Version: 0.8.x+commit.<h>.Linux.g++"
//   solc --standard-json [opts] < in    -> standard-JSON output on stdout
//
// Imports are resolved against --base-path, --include-path, the current directory, the
// project's contracts/ and node_modules/ (TDS_PROJECT_ROOT, TDS_NODE_MODULES).
'use strict';
const fs = require('fs');
const path = require('path');

const projectRoot = process.env.TDS_PROJECT_ROOT || path.resolve(__dirname, '..');
const nodeModules = process.env.TDS_NODE_MODULES || path.join(projectRoot, 'node_modules');

function loadSolc() {
  try {
    return require(path.join(nodeModules, 'solc'));
  } catch (err) {
    process.stderr.write(`solc front-end: cannot load the npm package 'solc' from ${nodeModules}; run 'make setup' (npm ci)\n`);
    process.exit(2);
  }
}

function nativeVersion(solc) {
  // solcjs reports "...Emscripten.clang"; tools parse the native "...Linux.g++" form.
  return solc.version().replace(/\.Emscripten\.clang$/, '.Linux.g++');
}

function parseArgs(argv) {
  const opts = { standardJson: false, version: false, roots: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const takeValue = () => (a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]);
    if (a === '--version') opts.version = true;
    else if (a === '--standard-json') opts.standardJson = true;
    else if (a.startsWith('--allow-paths')) takeValue().split(',').filter(Boolean).forEach((p) => opts.roots.push(p));
    else if (a.startsWith('--base-path') || a.startsWith('--include-path')) opts.roots.push(takeValue());
    else if (a === '-' ) continue;
  }
  return opts;
}

function makeResolver(roots) {
  const bases = [...roots, process.cwd(), path.join(projectRoot, 'contracts'), projectRoot, nodeModules];
  return function findImport(importPath) {
    const candidates = path.isAbsolute(importPath) ? [importPath] : bases.map((b) => path.resolve(b, importPath));
    for (const c of candidates) {
      try {
        if (fs.statSync(c).isFile()) return { contents: fs.readFileSync(c, 'utf8') };
      } catch (_) { /* try the next base */ }
    }
    return { error: `File not found: ${importPath} (searched ${bases.join(', ')})` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const solc = loadSolc();
  if (opts.version) {
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${nativeVersion(solc)}\n`);
    return;
  }
  if (!opts.standardJson) {
    process.stderr.write('solc front-end: only --version and --standard-json are supported\n');
    process.exitCode = 2;
    return;
  }
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    const input = Buffer.concat(chunks).toString('utf8');
    const output = solc.compile(input, { import: makeResolver(opts.roots) });
    // Let Node exit on its own once stdout drains: an explicit exit truncates piped output at 64 KiB.
    process.stdout.write(output + '\n');
  });
}

main();
