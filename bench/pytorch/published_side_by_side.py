"""
Side-by-side check of srflow against the PUBLISHED SRFlow code (andreas128/SRFlow, its code/ folder,
which you check out yourself; it is CC BY-NC-SA 4.0 and not part of srflow): builds the three
published SRFlow architectures and the three RRDB networks from the published YAML files with
random weights, saves them under the published file names (no YAML beside them) and writes, for
each, test images and the published code's reference: the NLL of an HR/LR pair (SRFlow) or the
RRDB's output rounded to 8 bits (RRDB). docs/PUBLISHED-MODELS.md lists the srflow commands that
compare against them. PyTorch 1.13 (Debian's python3-torch), numpy and PyYAML; cv2, natsort and
torchvision, which the published code imports but these paths do not use, are stubbed.

    python3 bench/pytorch/published_side_by_side.py --code /path/to/SRFlow/code --out /tmp/pubck
"""
import argparse, sys, os, json, struct, zlib, tempfile
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument('--code', required=True, help="the published code's code/ folder (with models/ and confs/)")
ap.add_argument('--out', required=True, help='output folder')
args = ap.parse_args()
stubs = tempfile.mkdtemp(prefix='srflow-stubs-')
os.makedirs(os.path.join(stubs, 'torchvision'))
open(os.path.join(stubs, 'cv2.py'), 'w').write('')
open(os.path.join(stubs, 'natsort.py'), 'w').write('def natsorted(x, *a, **k): return sorted(x)\n')
open(os.path.join(stubs, 'torchvision', '__init__.py'), 'w').write('')
open(os.path.join(stubs, 'torchvision', 'utils.py'), 'w').write('def make_grid(*a, **k): raise NotImplementedError\n')
sys.path.insert(0, stubs)
sys.path.insert(0, os.path.abspath(args.code))
os.makedirs(args.out, exist_ok=True)
import numpy as np, torch, yaml
from models.modules.SRFlowNet_arch import SRFlowNet
from models.modules.RRDBNet_arch import RRDBNet
out = args.out
torch.manual_seed(0)
rs = np.random.RandomState(0)

def png(path, img):  # img HxWx3 uint8
    h, w, _ = img.shape
    raw = b''.join(b'\x00' + img[y].tobytes() for y in range(h))
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))

def smooth_image(h, w):
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.3 * np.sin(6 * x + 2 * c) * np.cos(4 * y - c) for c in range(3)], -1)
    img += 0.08 * rs.randn(h, w, 3)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)

def to_t(img): return torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()

def randomise(net):
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n.startswith('RRDB.') or 'invconv' in n: continue
            if n.endswith('logs') and 'actnorm' not in n: p.copy_(0.02 * torch.randn_like(p))
            elif '.4.' in n or '.conv.' in n: p.copy_(0.01 * torch.randn_like(p))
            elif 'actnorm' in n: p.copy_(0.05 * torch.randn_like(p))

refs = {}
for name, (hh, ww) in [('SRFlow_DF2K_4X', (64, 48)), ('SRFlow_DF2K_8X', (64, 64)), ('SRFlow_CelebA_8X', (64, 48))]:
    opt = yaml.safe_load(open(os.path.join(args.code, 'confs', f'{name}.yml')))
    g = opt['network_G']
    net = SRFlowNet(in_nc=g['in_nc'], out_nc=g['out_nc'], nf=g['nf'], nb=g['nb'], scale=opt['scale'], K=g['flow']['K'], opt=opt, step=None)
    randomise(net)
    net.eval()
    torch.save(net.state_dict(), os.path.join(out, f'{name}.pth'))
    s = opt['scale']
    hr_img = smooth_image(hh, ww)
    lr_img = smooth_image(hh // s, ww // s)
    png(os.path.join(out, f'{name}_hr.png'), hr_img)
    png(os.path.join(out, f'{name}_lr.png'), lr_img)
    with torch.no_grad():
        z, nll, logdet = net(gt=to_t(hr_img), lr=to_t(lr_img), reverse=False)
    refs[name] = {'nll': float(nll[0]), 'logdet': float(logdet[0]), 'params': sum(p.numel() for p in net.parameters())}
    print(name, refs[name], flush=True)

for name, scale, nb in [('RRDB_DF2K_4X', 4, 23), ('RRDB_DF2K_8X', 8, 23), ('RRDB_CelebA_8X', 8, 8)]:
    opt = {'scale': scale, 'network_G': {'which_model_G': 'RRDBNet', 'in_nc': 3, 'out_nc': 3, 'nf': 64, 'nb': nb}}
    net = RRDBNet(3, 3, 64, nb, 32, scale, opt)
    net.eval()
    torch.save(net.state_dict(), os.path.join(out, f'{name}.pth'))
    lr_img = smooth_image(24, 20)
    png(os.path.join(out, f'{name}_lr.png'), lr_img)
    with torch.no_grad():
        sr = net(to_t(lr_img))
    sr8 = np.round(np.clip(sr[0].permute(1, 2, 0).numpy(), 0, 1) * 255).astype(np.uint8)
    png(os.path.join(out, f'{name}_sr_ref.png'), sr8)
    np.save(os.path.join(out, f'{name}_sr_ref.npy'), sr[0].numpy())
    refs[name] = {'sr_min': float(sr.min()), 'sr_max': float(sr.max()), 'params': sum(p.numel() for p in net.parameters())}
    print(name, refs[name], flush=True)
json.dump(refs, open(os.path.join(out, 'refs.json'), 'w'), indent=1)
