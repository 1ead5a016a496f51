/* global self, WebGL2RenderingContext */
// Every read-back from the GPU (tfjs uses getBufferSubData or readPixels) comes back corrupted.
for (const name of ['getBufferSubData', 'readPixels']) {
  const original = WebGL2RenderingContext.prototype[name];
  WebGL2RenderingContext.prototype[name] = function (...args) {
    original.apply(this, args);
    for (const out of args) {
      if (out instanceof Float32Array) for (let i = 0; i < out.length; i++) out[i] += 1;
      else if (out instanceof Uint8Array) for (let i = 0; i < out.length; i++) out[i] ^= 0x10;
    }
  };
}
self.corruptedWebgl = true;
