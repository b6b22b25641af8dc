#!/usr/bin/env python3
"""Independent model of bnlab::data::epoch_permutation (src/data/batching.cpp): pure-Python
mt19937_64, SplitMix64 finalizer, Fisher-Yates with rejection sampling. Prints the order pinned in
tests/data/batching_test.cpp (Shuffle.OrderIsPinnedAcrossPlatformsAndVersions)."""
M=(1<<64)-1
def mix64(x):
    x=(x+0x9E3779B97F4A7C15)&M
    x=((x^(x>>30))*0xBF58476D1CE4E5B9)&M
    x=((x^(x>>27))*0x94D049BB133111EB)&M
    return x^(x>>31)
class MT64:
    def __init__(s,seed):
        s.mt=[0]*312; s.mt[0]=seed&M
        for i in range(1,312): s.mt[i]=(6364136223846793005*(s.mt[i-1]^(s.mt[i-1]>>62))+i)&M
        s.i=312
    def __call__(s):
        if s.i>=312:
            for k in range(312):
                y=(s.mt[k]&0xFFFFFFFF80000000)|(s.mt[(k+1)%312]&0x7FFFFFFF)
                v=s.mt[(k+156)%312]^(y>>1)
                if y&1: v^=0xB5026F5AA96619E9
                s.mt[k]=v
            s.i=0
        y=s.mt[s.i]; s.i+=1
        y^=(y>>29)&0x5555555555555555
        y^=(y<<17)&0x71D67FFFEDA60000
        y^=(y<<37)&0xFFF7EEE000000000
        y^=y>>43
        return y&M
g=MT64(5489)
for _ in range(9999): g()
assert g() == 9981545732273789042  # the C++ standard's check value for mt19937_64
def perm(n,seed,epoch):
    o=list(range(n)); g=MT64(mix64(seed^mix64(epoch)))
    for i in range(n,1,-1):
        t=((1<<64)-i)%i
        while True:
            r=g()
            if r>=t: j=r%i; break
        o[i-1],o[j]=o[j],o[i-1]
    return o
if __name__ == "__main__":
    print(perm(10, 42, 0))
