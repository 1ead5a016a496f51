import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, describe, expect, it } from 'vitest';
import { bounded, whenLost } from './gpu-loss.js';

/** A backend object shaped like tfjs' WebGL one where the watch looks: `gpgpu.gl`. */
class FakeGlBackend extends tf.KernelBackend {
  lost = false;
  readonly canvas = new EventTarget();
  readonly gpgpu = {
    gl: {
      canvas: this.canvas,
      isContextLost: () => this.lost,
    } as unknown as WebGL2RenderingContext,
  };
}

/** Shaped like tfjs' WebGPU backend: `device.lost`. */
class FakeGpuBackend extends tf.KernelBackend {
  loseDevice!: (info: { reason: string }) => void;
  readonly device = { lost: new Promise<{ reason: string }>((r) => (this.loseDevice = r)) };
}

let fakeGl: FakeGlBackend;
let fakeGpu: FakeGpuBackend;
tf.registerBackend('fake-gl', () => (fakeGl = new FakeGlBackend()), -1);
tf.registerBackend('fake-gpu', () => (fakeGpu = new FakeGpuBackend()), -1);

const settled = async <T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> =>
  Promise.race([promise, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);

afterEach(async () => {
  await tf.setBackend('cpu');
});

describe('whenLost', () => {
  it('reports a WebGL context lost by its event', async () => {
    await tf.setBackend('fake-gl');
    const watch = whenLost('webgl');
    expect(await settled(watch.lost, 50)).toBe('pending');
    fakeGl.canvas.dispatchEvent(new Event('webglcontextlost'));
    expect(await settled(watch.lost, 50)).toBe('the WebGL context was lost');
    watch.stop();
  });

  it('reports a WebGL context lost without its event (by asking the context)', async () => {
    await tf.setBackend('fake-gl');
    const watch = whenLost('webgl');
    expect(watch.check()).toBeUndefined();
    fakeGl.lost = true;
    // At once, before the watch's own poll or event: what a sync asks right after training.
    expect(watch.check()).toBe('the WebGL context was lost');
    expect(await settled(watch.lost, 2_000)).toBe('the WebGL context was lost');
    watch.stop();
  });

  it('reports a lost WebGPU device with its reason', async () => {
    await tf.setBackend('fake-gpu');
    const watch = whenLost('webgpu');
    expect(await settled(watch.lost, 50)).toBe('pending');
    expect(watch.check()).toBeUndefined();
    fakeGpu.loseDevice({ reason: 'destroyed' });
    expect(await settled(watch.lost, 50)).toBe('the WebGPU device was lost (destroyed)');
    expect(watch.check()).toBe('the WebGPU device was lost (destroyed)');
  });

  it('never reports a loss for a backend without a GPU', async () => {
    await tf.setBackend('cpu');
    const watch = whenLost('cpu');
    expect(await settled(watch.lost, 700)).toBe('pending');
    expect(watch.check()).toBeUndefined();
    watch.stop();
  });
});

describe('bounded', () => {
  const never = new Promise<string>(() => undefined);

  it('gives the work its answer when it comes in time', async () => {
    expect(await bounded(Promise.resolve(7), never, 1_000)).toBe(7);
    await expect(bounded(Promise.reject(new Error('broken')), never, 1_000)).rejects.toThrow(
      'broken',
    );
  });

  it('fails work that never answers once the time is up', async () => {
    await expect(bounded(new Promise(() => undefined), never, 20)).rejects.toThrow(
      'no answer within 0.02 s',
    );
  });

  it('fails work that never answers as soon as the GPU is lost, with the reason', async () => {
    await expect(
      bounded(new Promise(() => undefined), Promise.resolve('the WebGL context was lost'), 60_000),
    ).rejects.toThrow('the WebGL context was lost');
  });
});
