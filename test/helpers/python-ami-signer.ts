import { execFileSync } from 'node:child_process';

// An independent AMI signer: Python's urllib and hmac, written from ami.md, not from our code. It decodes each
// form body itself (parse_qsl, as a Python handler would) and signs what it decoded, so a test that verifies its
// signatures also checks that our form decoding agrees with Python's.

const PYTHON_SIGNER = `
import hashlib, hmac, json, sys
from urllib.parse import parse_qsl
out = []
for case in json.load(sys.stdin):
    fields = parse_qsl(case["body"], keep_blank_values=True, max_num_fields=None)
    lines = sorted(f"{name}={value}\\r\\n" for name, value in fields if name != "signature")
    out.append(hmac.new(case["secret"].encode("utf-8"), "".join(lines).encode("utf-8"), hashlib.sha1).hexdigest())
print(json.dumps(out))
`;

/** The signature Python computes for each urlencoded body with its secret. */
export function pythonSignBodies(cases: readonly { secret: string; body: string }[]): string[] {
  const output = execFileSync('python3', ['-c', PYTHON_SIGNER], {
    input: JSON.stringify(cases),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(output) as string[];
}
