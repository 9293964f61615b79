import { Keyv } from 'keyv';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { Http01Solver } from '../src/solvers/http01.js';
import { Storage } from '../src/storage/storage.js';

const token = 'Xo7wYkSsg2iNw0E1Q4lDbDnI4x8Pu2Cq_PFcbVrQNbI';
const keyAuthorization = `${token}.thumbprint`;

async function solverWithChallenge() {
  const storage = new Storage(new Keyv({ namespace: 'autotls' }));
  const solver = new Http01Solver(storage, silentLogger);
  await solver.present({ type: 'http-01', identifier: 'www.example.com', token, keyAuthorization });
  return { storage, solver };
}

const get = (url: string, host = 'www.example.com', method = 'GET') => ({ method, host, url });

describe('the HTTP-01 challenge route', () => {
  it('answers GET and HEAD for the identifier being validated, with the key authorization as text/plain', async () => {
    const { solver } = await solverWithChallenge();
    const answer = await solver.answer(get(`/.well-known/acme-challenge/${token}`, 'WWW.Example.com:80'));
    expect(answer).toEqual({
      status: 200,
      headers: { 'content-type': 'text/plain' },
      body: keyAuthorization,
    });
    expect((await solver.answer(get(`/.well-known/acme-challenge/${token}`, '', 'HEAD')))?.status).toBe(404);
    expect(
      (await solver.answer(get(`/.well-known/acme-challenge/${token}`, 'www.example.com', 'HEAD')))?.body,
    ).toBe('');
  });

  it('answers from storage when another instance presented the challenge (distributed solving)', async () => {
    const { storage } = await solverWithChallenge();
    const otherInstance = new Http01Solver(storage, silentLogger);
    expect((await otherInstance.answer(get(`/.well-known/acme-challenge/${token}`)))?.body).toBe(
      keyAuthorization,
    );
  });

  it.each([
    ['an unknown token', get('/.well-known/acme-challenge/unknownToken123')],
    ['another Host', get(`/.well-known/acme-challenge/${token}`, 'evil.example.net')],
    ['a Host that is no host name', get(`/.well-known/acme-challenge/${token}`, 'www.example.com/../x')],
    ['a path traversal', get(`/.well-known/acme-challenge/../${token}`)],
    ['an encoded traversal', get('/.well-known/acme-challenge/%2e%2e%2fsecret')],
    ['an overlong token', get(`/.well-known/acme-challenge/${'a'.repeat(5000)}`)],
    ['an empty token', get('/.well-known/acme-challenge/')],
  ])('returns 404 and leaks nothing for %s', async (_case, request) => {
    const { solver } = await solverWithChallenge();
    const answer = await solver.answer(request);
    expect(answer?.status).toBe(404);
    expect(answer?.body).not.toContain(token);
  });

  it('lets every other request fall through to the app: POST, other paths', async () => {
    const { solver } = await solverWithChallenge();
    expect(
      await solver.answer(get(`/.well-known/acme-challenge/${token}`, 'www.example.com', 'POST')),
    ).toBeUndefined();
    expect(await solver.answer(get('/index.html'))).toBeUndefined();
  });

  it('forgets a challenge once cleaned up, in memory and in storage', async () => {
    const { solver, storage } = await solverWithChallenge();
    await solver.cleanup({ type: 'http-01', identifier: 'www.example.com', token, keyAuthorization });
    expect((await solver.answer(get(`/.well-known/acme-challenge/${token}`)))?.status).toBe(404);
    expect(
      (await new Http01Solver(storage, silentLogger).answer(get(`/.well-known/acme-challenge/${token}`)))
        ?.status,
    ).toBe(404);
  });
});
