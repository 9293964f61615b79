// What the examples print on start: where they serve, where the local CA root is and how to trust it;
// and a listen failure (port taken, no permission) as its one line, not a stack trace.
import path from 'node:path';

/** Loopback names and IPs: served by autotls's local CA, whose root the browser must trust. */
const LOCAL = /^(localhost|.*\.localhost|.*\.local|.*\.internal|127\.\d+\.\d+\.\d+|::1)$/;

export function printServing({ domains, httpsPort, httpPort, dataDirectory }) {
  const host = (name) => (name.includes(':') ? `[${name}]` : name);
  const urls = domains.map((name) => `https://${host(name)}:${httpsPort}/`);
  console.log(`Serving ${urls.join(' ')} (plain HTTP on :${httpPort} redirects to HTTPS)`);
  if (!domains.some((name) => LOCAL.test(name))) return;
  const root = path.join(dataDirectory, 'pki', 'authorities', 'local', 'root.crt');
  console.log(`Local CA root: ${root}`);
  console.log(`  trust it for one command:  curl --cacert ${root} ${urls[0]}`);
  console.log('  or for this machine:       npx autotls trust   (system store and browsers; undo: untrust)');
}

export function exitOnListenError(error) {
  if (error?.name !== 'ListenError') throw error;
  console.error(error.message);
  process.exit(1);
}
