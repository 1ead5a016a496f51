// A self-hosted worker entry whose WebGL context is lost at its first read-back, as when the GPU
// process crashes during the backend self-test. The patch modules are evaluated first, in order.
import './lose-webgl.js';
import './lose-webgl-on-fence.js';
import './hearth-worker.js';
