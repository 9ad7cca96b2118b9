// Records the fake microphone with MediaRecorder, as a web app records a voice memo (WebM
// with Opus, in one-second slices), and uploads the recording to /v1/audio/transcriptions
// from the page. Prints {mimeType, bytes, status, body} as JSON on stdout.
//
//   node voice_memo.mjs http://127.0.0.1:PORT/ speech.wav seconds
import { launchWithMicrophone } from "./launch.mjs";

const [url, wav, secondsArg] = process.argv.slice(2);
if (!url || !wav || !secondsArg) {
  console.error("usage: node voice_memo.mjs URL WAV SECONDS");
  process.exit(2);
}
const browser = await launchWithMicrophone(wav);
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`[page] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
  await page.goto(url);
  const result = await page.evaluate(async (seconds) => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const recorder = new MediaRecorder(stream);
    const slices = [];
    recorder.ondataavailable = (e) => slices.push(e.data);
    const stopped = new Promise((resolve) => (recorder.onstop = resolve));
    recorder.start(1000);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    recorder.stop();
    await stopped;
    stream.getTracks().forEach((t) => t.stop());
    const memo = new Blob(slices, { type: recorder.mimeType });
    const form = new FormData();
    form.append("file", memo, "memo.webm");
    form.append("model", "whisper-1");
    const r = await fetch("/v1/audio/transcriptions", { method: "POST", body: form });
    return { mimeType: recorder.mimeType, bytes: memo.size, status: r.status, body: await r.text() };
  }, Number(secondsArg));
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
