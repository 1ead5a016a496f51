/**
 * Several instances on one database (PostgreSQL behind a load balancer): a secure round lives in the
 * memory of the instance that formed it (secure-rounds.ts), and its id begins with that instance's
 * id. A round's request that reaches another instance is forwarded to the one running it, whose URL
 * the store's `instances` table holds (`--instance-url`, registered at start, refreshed while the
 * instance runs, removed when it stops). The forwarded request carries a peer key derived from the
 * operator token, and the instance running the round then skips the gate (rate limit, site key,
 * origin) that the first instance already applied. A round whose instance is gone cannot be reached:
 * its devices are told it is unknown (HEARTH_E_SECAGG_ROUND) and join a new one, as after a restart.
 *
 * Joins go to one forming round for all instances, so a round fills as fast as with one instance:
 * the store holds which instance's round is forming (`secure_forming`, claimed by compare-and-swap
 * when an instance opens one, released when it forms), and a join reaching another instance is
 * forwarded there with the device's client identity, so the join budget holds across instances.
 * Two instances opening rounds at the same moment: one claim wins, and the other round, which new
 * devices no longer reach, is abandoned at its join deadline unless it already has its m devices.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { HearthError } from '../protocol/errors.js';
import { SECURE_DEVICE_HEADER } from '../protocol/secagg/http.js';
import type { Store } from './store.js';

/** Header of a request one instance forwards to another: the peer key, hex. */
export const PEER_HEADER = 'x-hearth-peer';

/** Header of a forwarded join: the device's client identity (join-budget.ts), believed from peers. */
export const CLIENT_HEADER = 'x-hearth-client';

/** Hex characters of an instance id, the first of every secure round id it forms. */
export const INSTANCE_ID_CHARS = 8;

/** How often a running instance refreshes its row, and how long an unrefreshed row is kept. */
export const INSTANCE_REFRESH_MS = 5 * 60_000;
export const INSTANCE_FORGET_MS = 60 * 60_000;

/** A fresh instance id: 32 random bits, hex. */
export function newInstanceId(): string {
  return bytesToHex(randomBytes(INSTANCE_ID_CHARS / 2));
}

/** The key instances sharing an operator token present to each other (never the token itself). */
export function peerKey(operatorToken: string): string {
  return bytesToHex(hmac(sha256, utf8ToBytes(operatorToken), utf8ToBytes('hearth peer key v1')));
}

/** What a Peers needs. */
export interface PeersOptions {
  readonly store: Store;
  /** This instance's id (the prefix of the rounds it forms). */
  readonly self: string;
  /** Where the others reach this one; undefined: no forwarding, in or out. */
  readonly url?: string;
  /** The operator token the peer key is derived from (required with `url`). */
  readonly operatorToken?: string;
  /** How long a forwarded request may take (a fetch step long-polls). */
  readonly timeoutMs: number;
  readonly now?: () => number;
}

/** This instance among the others sharing its database. */
export class Peers {
  private readonly key: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /**
   * URLs of the instances this one has reached: an instance keeps its URL for its life, so a round's
   * many forwarded steps read the store once. Dropped when the instance stops answering.
   */
  private readonly urls = new Map<string, string>();

  constructor(private readonly options: PeersOptions) {
    if (options.url !== undefined && options.operatorToken === undefined) {
      throw new Error('forwarding between instances needs the operator token');
    }
    this.key = options.url === undefined ? undefined : Buffer.from(peerKey(options.operatorToken!));
    this.now = options.now ?? Date.now;
  }

  get self(): string {
    return this.options.self;
  }

  /** Whether round `roundId` was formed here. */
  owns(roundId: string): boolean {
    return roundId.startsWith(this.options.self);
  }

  /** True when `request` was forwarded by another instance holding the same peer key. */
  isPeer(request: FastifyRequest): boolean {
    const header = request.headers[PEER_HEADER];
    if (!this.key || typeof header !== 'string') return false;
    const given = Buffer.from(header);
    return given.length === this.key.length && timingSafeEqual(given, this.key);
  }

  /** Records this instance in the store and keeps its row fresh until stop(). */
  async start(): Promise<void> {
    const { url, store, self } = this.options;
    if (url === undefined) return;
    const register = () =>
      store.registerInstance(self, url, new Date(this.now()), INSTANCE_FORGET_MS);
    await register();
    this.timer = setInterval(() => void register().catch(() => {}), INSTANCE_REFRESH_MS);
    this.timer.unref();
  }

  /** Removes this instance's row (its rounds end with it). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.options.url !== undefined) await this.options.store.forgetInstance(this.options.self);
  }

  /** The client identity another instance forwarded with a join (only from a peer). */
  forwardedClient(request: FastifyRequest): string | undefined {
    const header = request.headers[CLIENT_HEADER];
    return this.isPeer(request) && typeof header === 'string' ? header : undefined;
  }

  /**
   * Where a join goes: true when it was forwarded to the instance whose round is forming (and the
   * reply relayed); false when this instance should take it, because no instance is forming one,
   * this one is, or the one that claimed it is gone (its claim is then dropped).
   */
  async routeJoin(request: FastifyRequest, reply: FastifyReply, client: string): Promise<boolean> {
    if (!this.key || this.isPeer(request)) return false;
    const { store } = this.options;
    const claim = await store.formingRound();
    if (!claim || claim.instance === this.self) return false;
    try {
      await this.send(claim.instance, request, reply, { [CLIENT_HEADER]: client });
      return true;
    } catch (error) {
      if (!(error instanceof HearthError && error.code === 'HEARTH_E_SECAGG_ROUND')) throw error;
      await store.swapFormingRound(claim.round, undefined);
      return false;
    }
  }

  /**
   * The forming round `roundId` opened here: claims it for the instances sharing the store. False
   * when another live instance's round is forming (this one is then left to expire unformed).
   */
  async claim(roundId: string): Promise<boolean> {
    if (!this.key) return true;
    const { store } = this.options;
    for (let attempt = 0; attempt < 3; attempt++) {
      const claim = await store.formingRound();
      const taken =
        claim !== undefined &&
        claim.instance !== this.self &&
        (await store.instanceUrl(claim.instance)) !== undefined;
      if (taken) return false;
      if (await store.swapFormingRound(claim?.round, { round: roundId, instance: this.self })) {
        return true;
      }
    }
    return false;
  }

  /** The round `roundId` formed or ended: new devices no longer join it. */
  async release(roundId: string): Promise<void> {
    if (this.key) await this.options.store.swapFormingRound(roundId, undefined);
  }

  /**
   * Sends `request` (a step of a round this instance does not run) to the instance that formed the
   * round, and relays its answer. A request that was itself forwarded is never forwarded again.
   */
  async forward(roundId: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (!this.key || this.isPeer(request)) {
      throw new HearthError('HEARTH_E_SECAGG_ROUND', `round ${roundId} is not run here`);
    }
    await this.send(roundId.slice(0, INSTANCE_ID_CHARS), request, reply, {});
  }

  /** Relays `request` to instance `to`; HEARTH_E_SECAGG_ROUND when it cannot be reached. */
  private async send(
    to: string,
    request: FastifyRequest,
    reply: FastifyReply,
    extra: Record<string, string>,
  ): Promise<void> {
    const unknown = (why: string): never => {
      throw new HearthError('HEARTH_E_SECAGG_ROUND', `instance ${to} ${why}`);
    };
    const base =
      this.urls.get(to) ?? (await this.options.store.instanceUrl(to)) ?? unknown('is gone');
    const headers: Record<string, string> = { ...extra, [PEER_HEADER]: this.key!.toString() };
    for (const name of ['content-type', SECURE_DEVICE_HEADER]) {
      const value = request.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    let answer: Response;
    try {
      answer = await fetch(`${base.replace(/\/$/, '')}${request.url}`, {
        method: 'POST',
        headers,
        ...(Buffer.isBuffer(request.body) ? { body: new Uint8Array(request.body) } : {}),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch {
      this.urls.delete(to);
      return unknown('does not answer');
    }
    // Bounded by the instances that ever ran rounds here; a busy cluster has a handful.
    if (this.urls.size > 64) this.urls.clear();
    this.urls.set(to, base);
    const body = Buffer.from(await answer.arrayBuffer());
    void reply.code(answer.status);
    const type = answer.headers.get('content-type');
    if (type) void reply.type(type);
    const retry = answer.headers.get('retry-after');
    if (retry) void reply.header('retry-after', retry);
    await reply.send(answer.status === 204 ? undefined : body);
  }
}
