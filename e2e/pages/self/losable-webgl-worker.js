// A self-hosted worker entry whose WebGL contexts the test can lose (self.loseWebgl()), as a GPU
// process crash or a driver reset loses them while the page is in use.
import './lose-webgl.js';
import './hearth-worker.js';
