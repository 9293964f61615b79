/**
 * @module test/support/doc-snippets — the JavaScript/TypeScript blocks of our Markdown, as programs. The
 * rules (docs/doc-tests.md): every ```js / ```ts block runs, unless the line before it is
 * `<!-- doc-test: skip <reason> -->`; a block is run as written, its names and ports unchanged.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

const LANGUAGES = new Set(['js', 'javascript', 'mjs', 'ts', 'typescript']);
const SKIP = /^<!--\s*doc-test:\s*skip\b\s*(.*?)\s*-->$/;

export interface DocSnippet {
  /** `README.md:42` — the file (relative to the repository) and the line of the opening fence. */
  id: string;
  file: string;
  line: number;
  language: 'js' | 'ts';
  code: string;
  /** Why it is not run (from the skip marker); undefined when it runs. */
  skip?: string;
}

/** README.md, packages/x/README.md, docs/x.md: every Markdown file whose blocks must run. */
export async function documentedFiles(): Promise<string[]> {
  const packages = await readdir(path.join(root, 'packages'));
  const docs = (await readdir(path.join(root, 'docs'))).filter((file) => file.endsWith('.md'));
  return [
    'README.md',
    ...packages.sort().map((name) => `packages/${name}/README.md`),
    ...docs.sort().map((file) => `docs/${file}`),
  ];
}

/** The code blocks of one Markdown file. A skip marker without a reason is an error: say why. */
export function extractSnippets(file: string, markdown: string): DocSnippet[] {
  const lines = markdown.split('\n');
  const snippets: DocSnippet[] = [];
  for (let index = 0; index < lines.length; index++) {
    const fence = /^```(\w+)\s*$/.exec(lines[index] ?? '');
    if (!fence) continue;
    const end = lines.findIndex((line, at) => at > index && line.startsWith('```'));
    if (end === -1) throw new Error(`${file}:${index + 1}: unclosed code block`);
    const language = fence[1]?.toLowerCase() ?? '';
    const previous =
      lines
        .slice(0, index)
        .reverse()
        .find((line) => line.trim() !== '')
        ?.trim() ?? '';
    const marker = SKIP.exec(previous);
    if (LANGUAGES.has(language)) {
      if (marker && !marker[1]) throw new Error(`${file}:${index + 1}: doc-test skip marker needs a reason`);
      snippets.push({
        id: `${file}:${index + 1}`,
        file,
        line: index + 1,
        language: language.startsWith('t') ? 'ts' : 'js',
        code: lines.slice(index + 1, end).join('\n'),
        ...(marker ? { skip: marker[1] } : {}),
      });
    }
    index = end;
  }
  return snippets;
}

/** Every snippet of every documented file, in file order. */
export async function allSnippets(): Promise<DocSnippet[]> {
  const files = await documentedFiles();
  const perFile = await Promise.all(
    files.map(async (file) =>
      extractSnippets(file, await readFile(path.join(root, file), 'utf8').catch(() => '')),
    ),
  );
  return perFile.flat();
}

/**
 * The names a snippet serves, read from its own text: the strings in `domains: [...]` and `manage([...])`.
 * The runner checks the first one with SNI = that name.
 */
export function servedNames(code: string): string[] {
  const lists = [...code.matchAll(/(?:domains:\s*|manage\(\s*)\[([^\]]*)\]/g)].map((match) => match[1] ?? '');
  return lists.flatMap((list) => [...list.matchAll(/['"]([^'"]+)['"]/g)].map((match) => match[1] ?? ''));
}

/** The HTTPS port a snippet listens on, read from its text (`httpsPort: N`, `port: N`, `.listen(N)` but 80). */
export function httpsPortOf(code: string): number {
  const explicit = /httpsPort:\s*(\d+)/.exec(code) ?? /\bport:\s*(\d+)/.exec(code);
  if (explicit) return Number(explicit[1]);
  const listens = [...code.matchAll(/\.listen\((\d+)/g)]
    .map((match) => Number(match[1]))
    .filter((port) => port !== 80);
  return listens[0] ?? 443;
}
