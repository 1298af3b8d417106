import numpy as np, mpmath, time, sympy as sp
exec(open('_smoke2_tmp.py').read().split("gr=backward")[0])
s=syms['x'][0]
t=time.time(); d3=sp.diff(e,s,3); print('diff',time.time()-t, sp.count_ops(d3))
t=time.time(); v=sp.N(d3,50,subs=subs); print('N subs',time.time()-t)
t=time.time(); v2=d3.xreplace(subs).evalf(50); print('xreplace evalf',time.time()-t, v-v2)
allsyms=[s for a in syms.values() for s in a.ravel()]
t=time.time(); f=sp.lambdify(allsyms, d3, 'mpmath'); print('lambdify',time.time()-t)
vals=[mpmath.mpf(sp.Float(subs[s],80)._mpf_) for s in allsyms]
t=time.time()
with mpmath.workdps(60): v3=f(*vals)
print('eval',time.time()-t, mpmath.nstr(v3,50), v)
