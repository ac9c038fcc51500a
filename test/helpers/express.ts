/**
 * Both supported Express majors, so every HTTP test runs on each: `express` is 5, `express4` is the
 * same package at ^4 installed under an alias.
 */
import { createRequire } from 'node:module'
import { describe } from 'node:test'
import type express from 'express'

const require = createRequire(import.meta.url)
export type ExpressFactory = typeof express

export const EXPRESS_VERSIONS: readonly { major: 4 | 5; express: ExpressFactory }[] = [
  { major: 5, express: require('express') as ExpressFactory },
  { major: 4, express: require('express4') as ExpressFactory },
]

/** Registers the suite once per Express major. */
export function forEachExpress(
  name: string,
  suite: (express: ExpressFactory, major: 4 | 5) => void,
): void {
  for (const { major, express } of EXPRESS_VERSIONS) {
    describe(`${name} (express ${major})`, () => suite(express, major))
  }
}
