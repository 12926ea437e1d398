// Style Dictionary 5 build used by tests/patterns/npm_peers.py (reference, not shipped).
// Usage: node sd-build.mjs SRC:OUT[,SRC:OUT...] css,scss,ts,swift,android,markdown
import StyleDictionary from 'style-dictionary';
const [pairs, platforms] = process.argv.slice(2);
const all = {
  css: {transformGroup: 'css',
        files: [{destination: 'variables.css', format: 'css/variables'}]},
  scss: {transformGroup: 'scss',
         files: [{destination: '_variables.scss', format: 'scss/variables'}]},
  ts: {transformGroup: 'js',
       files: [{destination: 'tokens.js', format: 'javascript/es6'},
               {destination: 'tokens.d.ts', format: 'typescript/es6-declarations'}]},
  swift: {transformGroup: 'ios-swift',
          files: [{destination: 'Tokens.swift', format: 'ios-swift/class.swift',
                   options: {className: 'Tokens'}}]},
  android: {transformGroup: 'android',
            files: [{destination: 'tokens.xml', format: 'android/resources'}]},
  markdown: {transformGroup: 'js', files: [{destination: 'tokens.json', format: 'json/flat'}]},
};
for (const pair of pairs.split(',')) {
  const [src, out] = pair.split(':');
  const chosen = {};
  for (const name of platforms.split(',')) {
    chosen[name] = {...all[name], buildPath: out + '/' + name + '/'};
  }
  const sd = new StyleDictionary({source: [src + '/*.json'], platforms: chosen,
                                  log: {verbosity: 'silent', warnings: 'disabled'}});
  await sd.buildAllPlatforms();
}
