/* global self, OffscreenCanvas, WebGL2RenderingContext */
// The GPU goes away the way a GPU process crash or a driver reset takes it. Every WebGL context the
// worker makes is kept; `self.loseWebgl()` loses them all (WEBGL_lose_context), and with
// `self.loseWebglOnFence = true` the first fence tfjs sets (it sets one before every asynchronous
// read-back) loses its context first; with `self.loseWebglOnRead = true` the next synchronous
// read-back (readPixels: tfjs' dataSync, as training reads its update) does, once. A lost context
// stays lost.
const contexts = [];
const getContext = OffscreenCanvas.prototype.getContext;
OffscreenCanvas.prototype.getContext = function (...args) {
  const context = getContext.apply(this, args);
  if (context instanceof WebGL2RenderingContext && !contexts.includes(context)) {
    contexts.push(context);
  }
  return context;
};
const lose = (gl) => {
  if (gl.isContextLost()) return;
  gl.getExtension('WEBGL_lose_context').loseContext();
  self.lostWebgl = (self.lostWebgl ?? 0) + 1;
};
self.loseWebgl = () => contexts.forEach(lose);
self.webglContexts = () => contexts.length;
const fenceSync = WebGL2RenderingContext.prototype.fenceSync;
WebGL2RenderingContext.prototype.fenceSync = function (...args) {
  if (self.loseWebglOnFence) lose(this);
  return fenceSync.apply(this, args);
};
for (const method of ['readPixels', 'getBufferSubData']) {
  const read = WebGL2RenderingContext.prototype[method];
  WebGL2RenderingContext.prototype[method] = function (...args) {
    if (self.loseWebglOnRead) {
      self.loseWebglOnRead = false;
      lose(this);
    }
    return read.apply(this, args);
  };
}
