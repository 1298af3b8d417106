import numpy as np, mpmath, time, sympy as sp
import refgrad as rg
from refgrad.graph.to_sympy import to_sympy, point
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.differentiate.reverse import backward
from refgrad.differentiate.taylor import directional
rng=np.random.default_rng(0)
W=rng.standard_normal((2,3)); x=rng.standard_normal(3)
def f(p,d):
    h=rg.tanh(p["W"]@p["x"])
    return rg.logsumexp(h*h+rg.abs(h)+rg.relu(h), axis=0) + rg.max(p["W"])*rg.sum(rg.sigmoid(p["W"]))
g=rg.trace(f,{"W":W,"x":x})
t=time.time(); e,syms=to_sympy(g); print('build',time.time()-t, sp.count_ops(e))
subs=point(g,syms)
b=get_backend('mp',200)
t=time.time(); v=sp.N(e,50,subs=subs); print('eval',time.time()-t, v, forward(g,b)[g.output])
gr=backward(g,b,forward(g,b))
T=directional(g,b,'x',3)
for k in range(3):
    s=syms['x'][k]; d=e
    for j in range(3):
        t=time.time(); d=sp.diff(d,s); val=sp.N(d,50,subs=subs); 
        print(k,j,time.time()-t, mpmath.nstr(val-T[j,k].__float__(),5) if False else mpmath.nstr(mpmath.mpf(sp.Float(val,60)._mpf_)-T[j,k],5))
print(e)
print(sp.N(e.xreplace(subs),30))
