// Mints JWTs with the npm package jose, a JOSE implementation independent of
// the Go library Microhost verifies with. Reads a JSON array of
// {"alg", "kid", "key", "claims"} from stdin, where key is a PKCS#8 PEM private
// key (or the secret itself for HS256/384/512), and writes a JSON array of
// compact tokens to stdout. MICRO_JOSE_DIR names the directory jose was
// installed into (see ./install).
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.MICRO_JOSE_DIR;
if (!dir) {
  console.error('mint.mjs: set MICRO_JOSE_DIR to the output of scripts/jose-mint/install');
  process.exit(2);
}
const require = createRequire(join(dir, 'index.js'));
const jose = await import(pathToFileURL(require.resolve('jose')).href);

let input = '';
for await (const chunk of process.stdin) input += chunk;

const tokens = [];
for (const spec of JSON.parse(input)) {
  const key = spec.alg.startsWith('HS')
    ? new TextEncoder().encode(spec.key)
    : await jose.importPKCS8(spec.key, spec.alg);
  const header = { alg: spec.alg, typ: 'JWT' };
  if (spec.kid) header.kid = spec.kid;
  tokens.push(await new jose.SignJWT(spec.claims).setProtectedHeader(header).sign(key));
}
process.stdout.write(JSON.stringify(tokens));
