import numpy as np, mpmath, time
import refgrad as rg
trace = rg.trace
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.differentiate.reverse import backward
from refgrad.differentiate.taylor import directional, coordinate_derivatives
rng=np.random.default_rng(0)
W=rng.standard_normal((3,4)); x=rng.standard_normal(4)
def f(p,d):
    h=rg.tanh(p["W"]@p["x"])
    return rg.logsumexp(h*h+rg.abs(h)+rg.relu(h), axis=0) + rg.max(p["W"])*rg.sum(rg.sigmoid(p["W"]))
g=trace(f,{"W":W,"x":x})
b=get_backend('mp',200)
t=time.time(); D=coordinate_derivatives(g,b,3); print(time.time()-t)
gr=backward(g,b,forward(g,b))
for k in D: print(k, max(abs(a-c) for a,c in zip(D[k][0].ravel(),gr[k].ravel())))
# second deriv via central diff of first? compare with float64
D64=coordinate_derivatives(g,get_backend('float64'),3)
for k in D: print(k, np.max(np.abs(D64[k]-D[k].astype(float))/ (1e-300+np.abs(D[k].astype(float)))))
# check f'' via mp central differences of gradient along coordinate
from tests.oracles import mp_value
with mpmath.workprec(400):
    h=mpmath.ldexp(1,-60)
    base={k: np.array(g.values[i],dtype=object) for k,i in g.params.items()}
    for k,idx in [("W",(1,2)),("x",(3,))]:
        vs=[]
        for s in (-2,-1,0,1,2):
            pp={kk:v.copy() for kk,v in base.items()}; pp[k][idx]=mpmath.mpf(base[k][idx])+s*h
            vs.append(mp_value(g,pp,400))
        f2=(vs[3]-2*vs[2]+vs[1])/h**2; f3=(vs[4]-2*vs[3]+2*vs[1]-vs[0])/(2*h**3)
        fi=np.ravel_multi_index(idx,g.nodes[g.params[k]].shape)
        print(k, mpmath.nstr(f2,20), mpmath.nstr(D[k].reshape(3,-1)[1,fi],20), mpmath.nstr(f3,15), mpmath.nstr(D[k].reshape(3,-1)[2,fi],15))
