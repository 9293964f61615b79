// What the examples print on start: where they serve, where the local CA root is and how to trust it;
// and a listen failure (port taken, no permission) as its one line, not a stack trace. It sits beside the
// example packages, not in one, so what it needs of @autotls/core the examples pass in.

/** `localRoot`: the local CA root's file when some of `domains` are the local CA's (`isInternalName`). */
export function printServing({ domains, httpsPort, httpPort, localRoot }) {
  const host = (name) => (name.includes(':') ? `[${name}]` : name);
  const urls = domains.map((name) => `https://${host(name)}:${httpsPort}/`);
  console.log(`Serving ${urls.join(' ')} (plain HTTP on :${httpPort} redirects to HTTPS)`);
  if (!localRoot) return;
  const root = localRoot;
  console.log(`Local CA root: ${root}`);
  console.log(`  trust it for one command:  curl --cacert ${root} ${urls[0]}`);
  console.log('  or for this machine:       npx autotls trust   (system store and browsers; undo: untrust)');
}

/** `.catch(exitOnListenError(ListenError))`: a ListenError as its one line, anything else thrown on. */
export const exitOnListenError = (ListenError) => (error) => {
  if (!(error instanceof ListenError)) throw error;
  console.error(error.message);
  process.exit(1);
};
