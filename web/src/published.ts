/**
 * "Use your own model": a button that lets the user pick a model file (a published SRFlow_*.pth or
 * RRDB_*.pth, or an srflow .safetensors model). The file is read in the browser
 * (File.arrayBuffer()) and handed to the inference worker; nothing is uploaded. The published
 * weights are licensed CC BY-NC-SA 4.0 and are never bundled or downloaded by srflow.
 */
export interface PickedModel {
  bytes: ArrayBuffer;
  name: string;
}

/** Add the picker after `anchor`; `onModel` gets each picked file's bytes. */
export function setupModelPicker(anchor: HTMLElement, onModel: (m: PickedModel) => void, onError: (message: string) => void): void {
  const input = document.createElement('input');
  input.type = 'file';
  input.accept = '.pth,.pt,.safetensors';
  input.hidden = true;
  input.id = 'model-file';
  const button = document.createElement('button');
  button.type = 'button';
  button.id = 'model-pick';
  button.textContent = 'Use a model file…';
  button.title =
    'Load a published SRFlow_*.pth / RRDB_*.pth (or an srflow .safetensors model) from this computer; it is read in the browser, nothing is uploaded';
  button.addEventListener('click', () => input.click());
  input.addEventListener('change', async () => {
    const f = input.files?.[0];
    input.value = '';
    if (!f) return;
    try {
      onModel({ bytes: await f.arrayBuffer(), name: f.name });
    } catch (e) {
      onError(`Cannot read “${f.name}”: ${(e as Error).message}`);
    }
  });
  anchor.after(button, input);
}
