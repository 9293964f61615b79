#!/usr/bin/env node
/**
 * @module The `autotls` command: see and steer the certificates of a running app through its storage.
 * Every failure is one line on stderr and a non-zero exit, never a stack trace.
 */
import { parseArgs } from 'node:util';
import { REVOCATION_REASONS, requestRenewal, revoke } from './renew.js';
import { statusRows, statusTable } from './status.js';
import { CliError, openCliStorage } from './storage.js';
import { rootPem, trust } from './trust.js';

const USAGE = `usage: autotls <command> [options]

  status [--json]                 every stored certificate: expiry, renewal time, failures
  renew <name>                    the running app renews <name> at its next maintenance pass
  revoke <name> [--reason <r>]    revoke at its CA (reasons: ${Object.keys(REVOCATION_REASONS).join(', ')});
                                  the running app replaces it. --ca-file <pem>: the CA's HTTPS root
  root                            print the local CA's root certificate (PEM)
  trust | untrust                 install the local CA's root into (remove it from) the system store and NSS

  --storage <dir|redis://…>       the app's storage (default: $AUTOTLS_DATA, else the user data directory)
  --namespace <ns>                the Keyv namespace in Redis (default: found, "autotls" then "keyv")
`;

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new CliError(`${(error as Error).message}\n${USAGE}`, 2);
  }
  const { values, positionals } = parsed;
  const [command, name, ...extra] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const needsName = command === 'renew' || command === 'revoke';
  if (!['status', 'renew', 'revoke', 'root', 'trust', 'untrust'].includes(command)) {
    throw new CliError(`unknown command "${command}"\n${USAGE}`, 2);
  }
  if ((needsName && !name) || extra.length > 0 || (!needsName && name)) {
    throw new CliError(`wrong arguments for "${command}"\n${USAGE}`, 2);
  }
  const opened = await openCliStorage(values.storage, values.namespace);
  try {
    const { storage } = opened;
    switch (command) {
      case 'status': {
        const rows = await statusRows(storage);
        process.stdout.write(
          values.json
            ? `${JSON.stringify(rows, null, 2)}\n`
            : statusTable(rows, Date.now(), Boolean(process.stdout.isTTY) && !process.env.NO_COLOR),
        );
        return 0;
      }
      case 'renew': {
        const serial = await requestRenewal(storage, name as string);
        console.log(
          `renewal of ${name} (serial ${serial}) requested: the running app renews it at its next pass`,
        );
        return 0;
      }
      case 'revoke': {
        const { serial, ca } = await revoke(storage, name as string, {
          ...(values.reason && { reason: values.reason }),
          ...(values['ca-file'] && { caFile: values['ca-file'] }),
        });
        console.log(
          `revoked ${name} (serial ${serial}) at ${ca}: the running app replaces it at its next pass`,
        );
        return 0;
      }
      case 'root':
        process.stdout.write(await rootPem(storage));
        return 0;
      default: {
        for (const line of await trust(storage, command === 'trust')) console.log(line);
        return 0;
      }
    }
  } finally {
    await opened.close();
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      storage: { type: 'string' },
      namespace: { type: 'string' },
      json: { type: 'boolean' },
      reason: { type: 'string' },
      'ca-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    // Our own errors may carry the usage; anything else is cut to its first line (no stack, no dump).
    process.stderr.write(`autotls: ${error instanceof CliError ? message : message.split('\n')[0]}\n`);
    process.exitCode = error instanceof CliError ? error.exitCode : 1;
  },
);
