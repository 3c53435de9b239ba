import json, os, socket, subprocess, sys, time
ltd, root = sys.argv[1], sys.argv[2]
os.makedirs(root, exist_ok=True)
sock_path = root + "/ltd.sock"
proc = subprocess.Popen([ltd, "--socket", sock_path, "--state-dir", root + "/state"], stderr=open(root + "/stderr", "w"))
for _ in range(100):
    if os.path.exists(sock_path): break
    time.sleep(0.05)
time.sleep(0.2)
s = socket.socket(socket.AF_UNIX); s.connect(sock_path); f = s.makefile("rwb")
def req(obj):
    f.write((json.dumps(obj) + "\n").encode()); f.flush()
    return json.loads(f.readline())
X = list(range(1, 13)); Y = [5.0, 8.8, 9.6, 14.2, 18.8, 19.5, 21.4, 26.8, 28.9, 32.0, 33.8, 38.2]
def spec(shuffle, paused):
    return {"data": {"x": X, "y": Y}, "init": {"kernel": 0.5, "bias": 0}, "optimizer": {"name": "sgd", "learning_rate": 0.001},
            "epochs": 3, "batch_size": 4, "shuffle": shuffle, "paused": paused}
print(req({"op": "start", "job": "seeded", "spec": spec({"seed": 42}, True)})["type"])
print(req({"op": "start", "job": "drawn", "spec": spec(True, True)})["type"])
for job in ["seeded", "drawn"]:
    print(req({"op": "step", "job": job, "count": 5})["type"])
time.sleep(1.5)   # idle paused jobs checkpoint after 200 ms
drawn_shuffle = json.load(open(root + "/state/jobs/drawn/spec.json"))["shuffle"]
print("drawn resolved to", drawn_shuffle)
print(req({"op": "start", "job": "seeded-reference", "spec": spec({"seed": 42}, False)})["type"])
print(req({"op": "start", "job": "drawn-reference", "spec": spec(drawn_shuffle, False)})["type"])
time.sleep(1.5)
for job in ["seeded-reference", "drawn-reference"]:
    print(job, req({"op": "status", "job": job})["status"]["state"])
proc.terminate(); print("exit", proc.wait())
