// Opens the gateway's call page in headless Chromium with a fake microphone playing a WAV,
// presses Call, and waits until the agent has answered and been talked over. Prints the
// page's call statistics (window.callStats) as JSON on stdout; the Rust test asserts on them.
//
//   node call_page.mjs http://127.0.0.1:PORT/ speech.wav [timeout_ms]
import { launchWithMicrophone } from "./launch.mjs";

const [url, wav, timeoutArg] = process.argv.slice(2);
if (!url || !wav) {
  console.error("usage: node call_page.mjs URL WAV [timeout_ms]");
  process.exit(2);
}
const timeout = Number(timeoutArg || 90000);
const browser = await launchWithMicrophone(wav, [
  "--allow-loopback-in-peer-connection",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--autoplay-policy=no-user-gesture-required",
]);
let stats = null;
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`[page] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
  await page.goto(url);
  await page.click("#call");
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    stats = await page.evaluate(() => window.callStats);
    const answered = stats.turns.some((t) => t.role === "assistant");
    if (answered && stats.events.includes("output_audio_buffer.cleared")) break;
    if (stats.state === "failed" || stats.state === "ended") break;
    await page.waitForTimeout(250);
  }
  stats.transcriptHtml = await page.locator("#transcript").innerText();
  await page.click("#hangup").catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(stats));
