// `node --import ./test/fuzz/register-ts.mjs x.ts`: installs ts-hooks.mjs (TypeScript sources).
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
