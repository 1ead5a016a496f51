/**
 * The Hearth Web Worker entry: builds the engine and exposes it to the page with comlink. Started by
 * the SDK as a module worker; tfjs and the model live only here, never on the page's main thread.
 */
import { expose, transferHandlers } from 'comlink';
import { installErrorTransfer } from '../protocol/error-wire.js';
import { Engine } from './engine.js';

installErrorTransfer(transferHandlers as never);
expose(new Engine());
