/**
 * Device selection: ATOMA_DEVICE / configure({ device }) / info().cuda. On a machine without a
 * usable GPU (a CPU-only build, or a CUDA build with no device) asking for cuda must be a typed
 * ERR_NO_CUDA that says why -- never a silent fall back to the CPU. CPU == CUDA bytes are checked
 * on a GPU machine by scripts/cuda-conformance.mjs.
 */
import { describe, expect, it } from 'vitest';
import { AtomaError, Tensor, configure, device, deviceTensorsBuilt, info, sample, seeded, toDevice, type Device, type DeviceTensor } from '../lib/index.js';
import { leafHash } from '../lib/model/trace.js';
import { runCase } from '../lib/engine/conformance.js';
import { native } from '../lib/engine/native.js';
import { runCli } from './helpers.js';

const cuda = info().cuda;
// Why cuda is refused here, in the addon's words.
const WHY = cuda.built ? 'no usable CUDA GPU' : 'built without CUDA';
const GEMM = ['conform', 'gemm', '--m', '3', '--k', '5', '--n', '4', '--seed', '1'];

function thrown(fn: () => unknown): AtomaError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AtomaError);
    return e as AtomaError;
  }
  throw new Error('expected an AtomaError');
}

describe('info()', () => {
  it('reports the device and what CUDA this addon has', () => {
    const i = info();
    expect(i.device).toBe('cpu');
    expect(typeof cuda.built).toBe('boolean');
    expect(typeof cuda.available).toBe('boolean');
    if (!cuda.built) expect(cuda).toEqual({ built: false, available: false, device: null });
    if (cuda.available) expect(typeof cuda.device).toBe('string');
    else expect(cuda.device).toBeNull();
  });
});

describe.skipIf(cuda.available)('configure({ device }) without a usable GPU', () => {
  it('cuda is ERR_NO_CUDA naming why, and the device stays cpu', async () => {
    const before = (await runCase('gemm', { m: '3', k: '5', n: '4', seed: '1' })).digest();
    const e = thrown(() => configure({ device: 'cuda' }));
    expect(e.code).toBe('ERR_NO_CUDA');
    expect(e.message).toContain(WHY);
    expect(info().device).toBe('cpu');
    expect((await runCase('gemm', { m: '3', k: '5', n: '4', seed: '1' })).digest()).toBe(before);
  });
  it('the binding refuses cuda the same way', () => {
    expect(thrown(() => native.setDevice('cuda')).code).toBe('ERR_NO_CUDA');
  });
});

describe('configure({ device })', () => {
  it('cpu is accepted (and is the default)', () => {
    configure({ device: 'cpu' });
    expect(info().device).toBe('cpu');
  });
  it('an unknown device is ERR_UNKNOWN_DEVICE', () => {
    for (const d of ['tpu', 'CUDA', '', 'gpu']) {
      const e = thrown(() => configure({ device: d as Device }));
      expect(e.code, d).toBe('ERR_UNKNOWN_DEVICE');
      expect(e.message).toContain('expected cpu or cuda');
    }
    expect(thrown(() => configure({ device: 7 as unknown as Device })).code).toBe('ERR_UNKNOWN_DEVICE');
    expect(info().device).toBe('cpu');
  });
});

describe('ATOMA_DEVICE at the command line', () => {
  it.skipIf(cuda.available)('cuda is ERR_NO_CUDA for info and for a kernel, not a silent CPU run', () => {
    for (const args of [['info', '--json'], GEMM]) {
      const r = runCli(args, { ATOMA_DEVICE: 'cuda' });
      expect(r.status, args[0]).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('ERR_NO_CUDA');
      expect(r.stderr).toContain('ATOMA_DEVICE=cuda');
      expect(r.stderr).toContain(WHY);
    }
  });
  it('an unknown device is ERR_UNKNOWN_DEVICE', () => {
    const r = runCli(GEMM, { ATOMA_DEVICE: 'tpu' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ERR_UNKNOWN_DEVICE');
    expect(r.stderr).toContain("ATOMA_DEVICE: unknown device 'tpu'");
  });
  it('cpu gives the default digest, and info says cpu', () => {
    const want = runCli(GEMM, { ATOMA_DEVICE: '' });
    expect(want.status).toBe(0);
    expect(runCli(GEMM, { ATOMA_DEVICE: 'cpu' }).stdout).toBe(want.stdout);
    const i = JSON.parse(runCli(['info', '--json'], { ATOMA_DEVICE: 'cpu' }).stdout);
    expect(i.device).toBe('cpu');
    expect(i.cuda).toEqual(cuda);
  });
});

describe.skipIf(cuda.available)('device tensors without a usable GPU', () => {
  it('toDevice rejects with ERR_NO_CUDA naming why, before touching the data', async () => {
    const e = await toDevice(seeded([2, 3], 1n)).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(AtomaError);
    expect((e as AtomaError).code).toBe('ERR_NO_CUDA');
    expect((e as AtomaError).message).toContain(WHY);
    expect(deviceTensorsBuilt()).toBe(cuda.built);
  });
  it('a non-tensor is still ERR_TYPE and a non-f32 tensor ERR_DTYPE', async () => {
    await expect(toDevice([1, 2] as unknown as Tensor<'f32'>)).rejects.toMatchObject({ code: 'ERR_TYPE' });
    await expect(toDevice(Tensor.zeros([2], 'i32') as unknown as Tensor<'f32'>)).rejects.toMatchObject({ code: 'ERR_DTYPE' });
  });
});

describe('device.sample and leafHash', () => {
  it('a host tensor is ERR_TYPE, checked before the GPU is needed', () => {
    const host = seeded([8], 1n) as unknown as DeviceTensor;
    expect(thrown(() => device.sample(host, { temperature: 1 })).code).toBe('ERR_TYPE');
  });
  it.skipIf(!cuda.available)('device.sample gives sample()\'s token, leafHash() the trace leaf', async () => {
    for (const [n, seed] of [[1, 1n], [1000, 2n], [32000, 3n], [128256, 4n]] as const) {
      const x = seeded([1, n], seed);
      const logits = x.data as Float32Array;
      for (let i = 0; i < n; i += 97) logits[i] = Math.trunc(logits[i] * 4);   // ties
      const d = await toDevice(x);
      for (const p of [{ temperature: 0 }, { temperature: 0.8, topK: 40, topP: 0.95 }, { temperature: 1.3, topP: 0.5 }, { temperature: 1 }])
        for (const step of [0, 5, 2 ** 40])
          expect(device.sample(d, { ...p, seed: 9n, step }), `n=${n} ${JSON.stringify(p)} step=${step}`).toBe(sample(logits, p, 9n, step));
      expect(d.leafHash().toString('hex')).toBe(leafHash(logits, n).toString('hex'));
      expect(thrown(() => device.sample(d, { temperature: 1, topP: 0 })).code).toBe('ERR_ARGUMENT');
      d.dispose();
      expect(thrown(() => d.leafHash()).code).toBe('ERR_DISPOSED');
    }
    const two = await toDevice(seeded([2, 8], 1n));
    expect(thrown(() => device.sample(two, { temperature: 1 })).code).toBe('ERR_SHAPE');
    const nan = await toDevice(new Tensor('f32', [3], Float32Array.of(NaN, NaN, NaN)));
    expect(thrown(() => device.sample(nan, { temperature: 1 })).code).toBe('ERR_RANGE');
  });
});
