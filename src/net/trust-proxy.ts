/**
 * Fastify's trustProxy as a function of the live `trust_proxy` list, so a reload changes it: the
 * semantics of Fastify's own list form (proxy-addr), where the client is the first address, from
 * the socket's peer leftwards through X-Forwarded-For, that is not a trusted proxy. With the list
 * empty the peer is never trusted, so `request.ip` is the peer and the header is never read.
 */
import type { SettingsReader } from '../config/index.js';
import { inAddressList } from './address-list.js';

export function trustProxy(settings: SettingsReader): (address: string, hop: number) => boolean {
  return (address) => {
    let trusted: readonly string[];
    try {
      trusted = settings().trust_proxy;
    } catch {
      return false; // config not loaded: trust no one
    }
    return trusted.length > 0 && inAddressList(trusted, address);
  };
}
