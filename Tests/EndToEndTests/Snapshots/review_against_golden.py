import json, math, re, csv, sys, numpy as np
base=sys.argv[1]
g=[json.loads(l) for l in open(base+'/../LTEngineTests/Golden/seed_e4_b4.trace.ndjson')]
steps=[d for d in g if d['type']=='step']; epochs=[d for d in g if d['type']=='epoch_end']
f4=lambda v:'%.4f'%v; f6=lambda v:'%.6f'%v
ok=True; n=0
def check(a,b,what):
    global ok,n
    n+=1
    if a!=b: ok=False; print('MISMATCH',what,repr(a),repr(b))
S=base+'/Snapshots/'
lines=open(S+'tail.txt').read().splitlines()
rows=[l.split() for l in lines if re.match(r'^\s+\d+/4\s',l)]
check(len(rows),12,'tail rows')
for r,s in zip(rows,steps):
    check(r[0],f"{s['epoch']}/4",'epoch'); check(r[1],f"{s['step']}/3",'step'); check(r[2],str(s['global_step']),'iter')
    check(r[3],f"{s['indices'][0]}-{s['indices'][-1]}",'rows')
    check(r[4],f6(s['w_after']),'w'); check(r[5],f6(s['b_after']),'b'); check(r[6],f4(s['batch_mse_f32']),'batch loss')
    check(r[7],f4(s['logs']['root_mean_squared_error']),'keras rmse'); check(r[8],f4(s['val_eval_rmse']),'val rmse')
el=[l for l in lines if l.startswith('── epoch')]
check(len(el),4,'epoch lines')
for l,e in zip(el,epochs):
    L=e['logs']
    check(l,f"── epoch {e['epoch']}/4 done after iteration {e['global_step']}: loss {f4(L['loss'])}  rmse {f4(L['root_mean_squared_error'])}  val_loss {f4(L['val_loss'])}  val_rmse {f4(L['val_root_mean_squared_error'])}  w {f6(e['w'])}  b {f6(e['b'])}",'epoch line')
end=[d for d in g if d['type']=='end'][0]
check(lines[-1],f"── end: finished after 12 steps (epoch 4): w {str(np.float32(end['w']))}, b {str(np.float32(end['b']))}",'end')
x=np.arange(1,13,dtype=float); y=np.array([5.0,8.8,9.6,14.2,18.8,19.5,21.4,26.8,28.9,32.0,33.8,38.2])
w,b=np.polyfit(x,y,1); mse=np.mean((y-(w*x+b))**2)
check(lines[2].strip(),f"initial w 0.5, b 0.0 (given); least-squares optimum w {w:.4f}, b {b:.4f} (mse {mse:.4f})",'optimum')
ev=[l.split() for l in open(S+'tail-every-3.txt').read().splitlines() if re.match(r'^\s+\d+/4\s',l)]
check([r[2] for r in ev],['3','6','9','12'],'every 3')
cl=[l.split() for l in open(S+'compare.txt').read().splitlines() if re.match(r'^\s+\d+\s+\d+\s+\d+\s',l)]
check(len(cl),12,'compare rows')
for r,s in zip(cl,steps):
    check(r[4],f4(s['logs']['root_mean_squared_error']),'cmp keras'); check(r[5],f4(np.sqrt(np.float32(s['batch_mse_f32']))),'cmp batch')
    check(r[6],f4(s['val_eval_rmse']),'cmp val')
    d=float(np.float32(s['logs']['root_mean_squared_error'])-np.float32(s['val_eval_rmse']))
    check(r[7],('+' if d>=0 else '')+f4(d),'cmp diff')
rd=list(csv.DictReader(open(S+'export.csv')))
check(len(rd),12,'export rows')
for r,s in zip(rd,steps):
    for k,gk in [('w_before','w_before'),('b_before','b_before'),('w_after','w_after'),('b_after','b_after'),('batch_loss','batch_mse_f32'),('val_rmse','val_eval_rmse'),('val_loss','val_eval_loss')]:
        check(np.float32(float(r[k])),np.float32(s[gk]),'export '+k)
    check(np.float32(float(r['rmse'])),np.float32(s['logs']['root_mean_squared_error']),'export rmse')
    check(np.float32(float(r['loss'])),np.float32(s['logs']['loss']),'export loss')
    check(r['rows'],' '.join(map(str,s['indices'])),'export rows')
    check([np.float32(float(v)) for v in r['y'].split()],[np.float32(v) for v in s['y']],'export y')
    check(abs(float(r['grad_w'])-s['grad_w_f64'])/abs(s['grad_w_f64'])<1e-5,True,'grad_w ~ f64')
    check(abs(float(r['grad_b'])-(-2/4)*sum(np.float64(yy)-(np.float64(xx)*s['w_before']+s['b_before']) for xx,yy in zip(s['x'],s['y'])))<1e-3,True,'grad_b formula')
# explain-*.txt: see review_explain.py
st=open(S+'status.txt').read()
check(f"rmse {f4(steps[-1]['logs']['root_mean_squared_error'])}" in st and f"val_rmse {f4(steps[-1]['val_eval_rmse'])}" in st,True,'status metrics')
print(('ALL OK' if ok else 'FAILURES'), n, 'checks')
