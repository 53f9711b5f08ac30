/**
 * The /metrics allow-list (config `metrics_allow`): IP addresses and CIDR blocks, matched by the
 * address lists every network rule shares (../net/address-list.ts).
 */
import { addressListFormat, inAddressList, parseAddressEntry } from '../net/address-list.js';

export const parseAllowEntry = parseAddressEntry;

/** Convict format of `metrics_allow`: names the first entry that is not an address or CIDR block, by index (no value is echoed). */
export const checkAllowList = addressListFormat('metrics_allow');

export const isAllowed = inAddressList;
