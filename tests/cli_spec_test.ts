import "../plugins/mod.ts";
import { splitSpec } from "../cli/_common.ts";
import { assertEquals } from "./_assert.ts";

Deno.test("method specs: names containing '+' split where both sides are registered", () => {
  assertEquals(splitSpec("grad-cam"), ["grad-cam", undefined]);
  assertEquals(splitSpec("grad-cam++"), ["grad-cam++", undefined]);
  assertEquals(splitSpec("grad-cam+gradual"), ["grad-cam", "gradual"]);
  assertEquals(splitSpec("grad-cam+gradual+"), ["grad-cam", "gradual+"]);
  assertEquals(splitSpec("grad-cam+++gradual+"), ["grad-cam++", "gradual+"]);
  assertEquals(splitSpec("c-eb+none"), ["c-eb", "none"]);
  assertEquals(splitSpec("nope+gradual"), ["nope", "gradual"]);
});
