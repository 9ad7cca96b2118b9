// Headless Chromium (Debian's, or $CHROMIUM) with a fake microphone playing `wav` once, as
// the browser tests use it.
import { chromium } from "playwright-core";

export function launchWithMicrophone(wav, extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${wav}%noloop`,
      ...extraArgs,
    ],
  });
}
